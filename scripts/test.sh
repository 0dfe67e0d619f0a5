#!/usr/bin/env bash
# One command: installs dependencies, builds, and runs every test (unit and integration; the
# integration tests start real cloudcore processes on loopback and drive them with edgectl
# and kubectl). Exit status is non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
if [[ "${CI:-}" == "true" ]]; then
  export EXTRA_CMAKE_ARGS="${EXTRA_CMAKE_ARGS:-} -DEP_WERROR=ON"
fi
bash scripts/build.sh
BUILD_DIR=${BUILD_DIR:-build}
# The arm tests need the cross builds: scripts/test-arm.sh.
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$(nproc)" --timeout 300 -LE '^arm$' "$@"
