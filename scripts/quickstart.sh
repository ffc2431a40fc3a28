#!/usr/bin/env bash
# The README's first command: installs what is missing, builds, starts berthd
# on its embedded default (4 declared GPUs where the machine has none) and runs
# a real example job on it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh berthd berth berth-shim
export PATH="$PWD/build/bin:$PATH"
export BERTH_DATA_DIR="${BERTH_DATA_DIR:-$PWD/.berth}"

if ! berth ps >/dev/null 2>&1; then
  gpus=()
  if ! ldconfig -p 2>/dev/null | grep -q libnvidia-ml.so.1; then gpus=(--gpus 4); fi
  berth up --detach "${gpus[@]}"
fi

echo
echo "== berth gpus"
berth gpus
echo
echo "== two 2-GPU jobs side by side, and a third that waits for a free pair"
a=$(berth run --gpus 2 --name train-a -- sh -c 'echo "job $BERTH_JOB_ID sees CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES"; sleep 2')
b=$(berth run --gpus 2 --name train-b -- sh -c 'echo "job $BERTH_JOB_ID sees CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES"; sleep 2')
berth run --gpus 2 --name eval --wait -- sh -c 'echo "job $BERTH_JOB_ID sees CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES after waiting its turn"'
berth logs "$a"
berth logs "$b"
echo
echo "== berth ps -a"
berth ps -a
echo
echo "berthd keeps running (data in $BERTH_DATA_DIR). Try:"
echo "  export PATH=\"$PWD/build/bin:\$PATH\" BERTH_DATA_DIR=\"$BERTH_DATA_DIR\""
echo "  berth run --gpus 1 --wait -- nvidia-smi || true;  berth ps -a;  berth down"
