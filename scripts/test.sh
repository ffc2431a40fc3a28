#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, and runs the
# whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
# Every tracked C++ file is formatted by .clang-format (scripts/check-format.sh --fix formats them).
scripts/check-format.sh
scripts/build.sh
(cd build && BERTH_REQUIRE_TOOLS=1 ctest --output-on-failure --timeout 300 -j2 "$@")
# Every fuzz target briefly (3 s each, a fixed seed, after the kept regression inputs; docs/security.md, "Fuzzing", for long runs).
tests/fuzz/run.sh --time 3 --seed 1
# The Python SDK's own tests (standard library only; an end-to-end test uses build/bin/berthd).
BERTH_BIN_DIR="$PWD/build/bin" /usr/bin/python3 -m unittest discover -v -s python/tests
