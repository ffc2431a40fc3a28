#!/usr/bin/env bash
# Installs the Debian packages Berth builds with (and, with --test, the real
# servers its tests start). Safe to run again: it installs only what is missing.
set -euo pipefail

build_pkgs=(g++ cmake ninja-build pkg-config nlohmann-json3-dev libyaml-cpp-dev libsqlite3-dev
  libcpp-httplib-dev libboost1.74-dev libspdlog-dev libfmt-dev libcli11-dev libssl-dev tzdata)
# clang and libclang-rt-14-dev (libclang_rt.fuzzer): the fuzz targets (tests/fuzz/run.sh);
# clang-format: scripts/check-format.sh. slurmctld, slurmd, slurm-client, munge: the Slurm
# executor's tests start a real cluster (tests/slurm/).
test_pkgs=(libgtest-dev libgmock-dev libbenchmark-dev sqlite3 python3 procps prometheus python3-torch
  python3-sklearn clang libclang-rt-14-dev clang-format slurmctld slurmd slurm-client munge)

want=("${build_pkgs[@]}")
if [[ "${1:-}" == "--test" ]]; then
  want+=("${test_pkgs[@]}")
fi

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "berth: installing ${missing[*]}"
  sudo=""
  if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y --no-install-recommends "${missing[@]}"
fi
