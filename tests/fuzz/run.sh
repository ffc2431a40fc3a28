#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, -fsanitize=fuzzer,address,undefined) in
# their own build directory and runs each in turn. docs/security.md, "Fuzzing".
#
#   tests/fuzz/run.sh [--time SECONDS] [--runs N] [--seed N] [TARGET...]
#
# --time: seconds per target (default 3: the test command's short run);
# --runs: stop a target after N executions instead (whichever comes first);
# --seed: libFuzzer's random seed (default: a new one each run; the test
#   command fixes it so that its short run is repeatable);
# TARGET: job_spec training_spec pipeline_spec cron daemon_config trace experiment_spec
# api_request (default: all). The corpus each target grows is kept in
# $BERTH_FUZZ_DIR/corpus/TARGET (default build-fuzz/), seeded on every run
# from examples/; crashes, leaks and hangs are written to
# $BERTH_FUZZ_DIR/crashes/ and make the script fail. libFuzzer's log for each
# target, with its final statistics, is $BERTH_FUZZ_DIR/logs/TARGET.log.
# Every input that once crashed a target is kept in tests/fuzz/regressions/
# TARGET/ and replayed before the target fuzzes.
#
# Without clang the script says so and exits 0, unless BERTH_REQUIRE_TOOLS is
# set (the test command installs clang and libclang-rt-14-dev).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"

time_s=3
runs=-1
seed_arg=()
all=(job_spec training_spec pipeline_spec cron daemon_config trace api_request experiment_spec)
targets=()
while (($#)); do
  case "$1" in
    --time) time_s="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --seed) seed_arg=(-seed="$2"); shift 2 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) targets+=("$1"); shift ;;
  esac
done
((${#targets[@]})) || targets=("${all[@]}")

if ! command -v clang++ >/dev/null; then
  if [[ -n "${BERTH_REQUIRE_TOOLS:-}" ]]; then
    echo "fuzz: clang++ is missing and BERTH_REQUIRE_TOOLS is set (scripts/install-deps.sh --test)" >&2
    exit 1
  fi
  echo "fuzz: SKIPPED: clang++ is not installed (scripts/install-deps.sh --test installs it)"
  exit 0
fi

dir="${BERTH_FUZZ_DIR:-$root/build-fuzz}"
mkdir -p "$dir"/{logs,crashes,seeds,corpus}
launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
if [[ ! -f "$dir/build.ninja" ]]; then
  cmake -S tests/fuzz -B "$dir" -G Ninja -DCMAKE_CXX_COMPILER=clang++ "${launcher[@]}" >/dev/null
fi
ninja -C "$dir" -j "${BERTH_FUZZ_BUILD_JOBS:-2}" $(printf 'fuzz_%s ' "${targets[@]}") >/dev/null

# Seeds, copied from examples/ on every run (never kept in the repository twice).
seed() {  # seed TARGET FILE...
  local t="$1"; shift
  mkdir -p "$dir/seeds/$t"
  for f in "$@"; do [[ -f "$f" ]] && cp "$f" "$dir/seeds/$t/"; done
  return 0
}
rm -rf "$dir/seeds"; mkdir -p "$dir/seeds"
seed job_spec examples/jobs/*.yaml
seed training_spec examples/training/*.yaml
seed experiment_spec examples/experiments/*.yaml
pipelines=()
crons=()
for f in examples/pipelines/*.yaml; do
  if grep -q '^kind: *CronPipeline' "$f"; then crons+=("$f"); else pipelines+=("$f"); fi
done
seed pipeline_spec "${pipelines[@]}"
seed cron "${crons[@]}"
printf '*/15 9-17 * * MON-FRI\n' >"$dir/seeds/cron/schedule"
seed trace examples/traces/*.csv tests/sim/data/*.csv
mkdir -p "$dir/seeds/daemon_config"
cat >"$dir/seeds/daemon_config/berthd.yaml" <<'YAML'
listen: 127.0.0.1:7420
dataDir: /var/lib/berth
gpus: 4
logLevel: info
scheduler: {policy: dynamic, resyncInterval: 5s, options: {backfill: "true"}}
store: {synchronous: FULL}
executor: {logCapMiB: 100}
pipelines: {maxFanOut: 10000}
telemetry: {interval: 1s, idleUtilPercent: 5, idleAfter: 5m}
YAML
mkdir -p "$dir/seeds/api_request"
for f in "${pipelines[@]}"; do
  python3 -c 'import json,sys; print(json.dumps({"spec": open(sys.argv[1]).read(), "parameters": {"lr": 0.1, "epochs": "3"}}))' \
    "$f" >"$dir/seeds/api_request/$(basename "$f" .yaml).json"
done
cp examples/jobs/*.yaml "$dir/seeds/api_request/"

failed=()
for t in "${targets[@]}"; do
  mkdir -p "$dir/corpus/$t"
  log="$dir/logs/$t.log"
  regress=(tests/fuzz/regressions/"$t"/*)
  if [[ -e "${regress[0]}" ]]; then
    if ! "$dir/fuzz_$t" -timeout=10 -rss_limit_mb=2048 "${regress[@]}" >"$dir/logs/$t.regressions.log" 2>&1; then
      failed+=("$t")
      echo "fuzz: $t FAILED on a kept regression input: see $dir/logs/$t.regressions.log" >&2
      grep -m8 -E 'ERROR|SUMMARY|runtime error|terminate called|what\(\)|Running:' \
        "$dir/logs/$t.regressions.log" >&2 || true
      continue
    fi
    echo "fuzz: $t: ${#regress[@]} kept regression inputs pass"
  fi
  echo "fuzz: $t for ${time_s}s$( ((runs >= 0)) && echo " or $runs executions")"
  if ! "$dir/fuzz_$t" -max_total_time="$time_s" -runs="$runs" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 "${seed_arg[@]}" -dict=tests/fuzz/spec.dict -artifact_prefix="$dir/crashes/$t-" \
      "$dir/corpus/$t" "$dir/seeds/$t" >"$log" 2>&1; then
    failed+=("$t")
    echo "fuzz: $t FAILED (crash, leak or hang): see $log and $dir/crashes/" >&2
    grep -m8 -E 'ERROR|SUMMARY|runtime error|terminate called|what\(\)|Test unit written' "$log" >&2 || true
  fi
  grep -E '^(stat::number_of_executed_units|stat::average_exec_per_sec|stat::new_units_added|stat::peak_rss_mb)' \
    "$log" | sed "s/^/  /" || true
done
if ((${#failed[@]})); then
  echo "fuzz: failed: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} targets, no crash, leak or hang"
