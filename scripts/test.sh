#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, and runs the
# whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
scripts/build.sh
cd build
ctest --output-on-failure --timeout 300 -j2 "$@"
