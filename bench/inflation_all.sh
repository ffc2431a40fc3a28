#!/bin/sh
# The inflation experiment (berth sim inflation) on every pod list of the
# Alibaba GPU-sharing trace, 10 seeds (42-51), best fit, FGD and Berth's
# placement. Writes one JSON per list (with the curves) to $OUT (default
# /tmp/inflation) and prints a markdown table of the figures at 100% arrival.
# Usage: bench/inflation_all.sh [TRACE_DIR] [BERTH]
set -eu
dir=${1:-/work/shared/traces/alibaba-gpu-2023}
berth=${2:-build/bin/berth}
out=${OUT:-/tmp/inflation}
mkdir -p "$out"
lists="default gpushare20 gpushare40 gpushare60 gpushare80 gpushare100 multigpu20 multigpu50 gpuspec33"
for list in $lists; do
  "$berth" sim inflation --nodes "$dir/openb_node_list_gpu_node.csv" \
    --pods "$dir/openb_pod_list_$list.csv" --seed 42 --seeds 10 -o json >"$out/$list.json"
done
python3 - "$out" $lists <<'PY'
import json, sys
out, lists = sys.argv[1], sys.argv[2:]
print("| pod list | best fit: allocated % / unallocated GPUs | FGD | Berth | Berth vs FGD (GPUs) | CPU per placement bf/fgd/berth (us) |")
print("| --- | ---: | ---: | ---: | ---: | ---: |")
for l in lists:
    r = json.load(open(f"{out}/{l}.json"))
    cell = lambda p: f"{r[p]['allocated_pct_at_100']:.2f} / {r[p]['unallocated_gpus_at_100']:.1f}"
    d = r['berth']['unallocated_gpus_at_100'] - r['fgd']['unallocated_gpus_at_100']
    us = "/".join(f"{r[p]['cpu_us_per_placement']:.0f}" for p in ("bestfit", "fgd", "berth"))
    print(f"| {l} | {cell('bestfit')} | {cell('fgd')} | {cell('berth')} | {d:+.1f} | {us} |")
PY
