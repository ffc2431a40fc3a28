#!/bin/bash
# Makes schema-v3.db with a real berthd of schema version 3 (the release at
# f36b46f). Usage: make_schema_v3.sh BIN_DIR FAKE_NVML_LIB OUT_DB
# BIN_DIR holds that release's berthd, berth and berth-shim; FAKE_NVML_LIB is
# its tests/gpu/fake_nvml/libberth_fake_nvml.so. See README.md.
set -euo pipefail
bin=$1 nvml=$2 out=$3
work=$(mktemp -d)
data=$work/data
mkdir -p "$data"
cat > "$work/nvml.json" <<JSON
{"devices": [
 {"name": "NVIDIA H100 80GB HBM3", "uuid": "GPU-0000fa4e-0000-0000-0000-000000000000", "pci_bus_id": "00000000:10:00.0",
  "memory_total_mib": 81559, "utilization": 60, "temperature": 40, "power_mw": 70000, "sm_clock_mhz": 1980, "processes": []},
 {"name": "NVIDIA H100 80GB HBM3", "uuid": "GPU-0000fa4e-0000-0000-0000-000000000001", "pci_bus_id": "00000000:11:00.0",
  "memory_total_mib": 81559, "utilization": 60, "temperature": 41, "power_mw": 70000, "sm_clock_mhz": 1980, "processes": []}]}
JSON
printf 'telemetry:\n  interval: 200ms\n  idleAfter: 1s\n' > "$work/berthd.yaml"
BERTH_NVML_LIBRARY=$nvml BERTH_FAKE_NVML_CONFIG=$work/nvml.json \
  setsid "$bin/berthd" --listen 127.0.0.1:0 --data-dir "$data" --config "$work/berthd.yaml" \
  > "$work/berthd.log" 2>&1 &
daemon=$!
for _ in $(seq 100); do [ -s "$data/berthd.url" ] && break; sleep 0.1; done
export BERTH_SERVER=$(cat "$data/berthd.url")
b() { "$bin/berth" "$@"; }
state() { b get -o json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])'; }
wait_state() { for _ in $(seq 300); do [ "$(state "$1")" = "$2" ] && return 0; sleep 0.1; done; echo "job $1 never reached $2" >&2; exit 1; }
sql() { python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); print("\n".join("|".join(map(str,r)) for r in c.execute(sys.argv[2])))' "$data/berth.db" "$1"; }

# 1. A 1-GPU job that runs ~1.5 s and ends: its GPU usage is saved (usage.<id>).
used=$(b run --gpus 1 --name used -- /bin/sh -c 'sleep 1.5')
wait_state "$used" Succeeded
for _ in $(seq 100); do [ -n "$(sql "SELECT 1 FROM meta WHERE key='usage.$used'")" ] && break; sleep 0.1; done
# 2. A 2-worker training job that succeeds, with a day's ttlSecondsAfterFinished:
#    training.<id> (status) and ttl.<id> (clean-up due time).
cat > "$work/train.json" <<JSON
{"apiVersion": "berth/v1", "kind": "TrainingJob", "metadata": {"name": "trained"},
 "spec": {"workers": 2, "ttlSecondsAfterFinished": 86400,
          "command": ["/bin/sh", "-c", "echo step 1; exit 0"]}}
JSON
trained=$(b train -f "$work/train.json")
wait_state "$trained" Succeeded
# 3. A job that ignores SIGTERM, cancelled with an hour's grace period; berthd
#    is killed (SIGKILL) during the grace: stop_intents = {"<id>": "cancel"}.
cat > "$work/stubborn.json" <<JSON
{"apiVersion": "berth/v1", "kind": "Job", "metadata": {"name": "stubborn"},
 "spec": {"command": ["/bin/sh", "-c", "trap '' TERM; while :; do sleep 1; done"],
          "terminationGracePeriodSeconds": 3600, "resources": {"gpus": 1}}}
JSON
stubborn=$(b submit -f "$work/stubborn.json")
wait_state "$stubborn" Running
b cancel "$stubborn" >/dev/null
for _ in $(seq 100); do [ -n "$(sql "SELECT 1 FROM meta WHERE key='stop_intents' AND value LIKE '%cancel%'")" ] && break; sleep 0.1; done
kill -KILL "$daemon"
wait "$daemon" 2>/dev/null || true
# The cancelled task is still in its grace period: end it (and its shim).
# task.json: the task's process group leader; shim.json: its supervisor.
for f in "$data"/runs/job-"$stubborn".*/task.json "$data"/runs/job-"$stubborn".*/shim.json; do
  pid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$f" 2>/dev/null || true)
  if [ -n "$pid" ]; then kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true; fi
done
# One self-contained file: fold the WAL in, drop free pages.
python3 - "$data/berth.db" "$out" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
c.execute("VACUUM INTO ?", (sys.argv[2],))
PY
echo "jobs: used=$used trained=$trained stubborn=$stubborn"
python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); print("user_version", c.execute("PRAGMA user_version").fetchone()[0]); [print(r) for r in c.execute("SELECT key, substr(value,1,120) FROM meta")]' "$out"
rm -rf "$work"
