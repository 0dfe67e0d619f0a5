#!/usr/bin/env bash
# Configures and builds everything with Ninja and ccache.
#   BUILD_DIR (default build), BUILD_TYPE (default Release), EXTRA_CMAKE_ARGS, TARGETS (default
#   all: ninja targets, space separated).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
BUILD_TYPE=${BUILD_TYPE:-Release}
JOBS=${JOBS:-$(nproc)}
# Hits across clones and build dirs: paths are hashed relative to the repository.
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$(pwd)}
export CCACHE_NOHASHDIR=1
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/ccache}
export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-5G}
# shellcheck disable=SC2086
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE="$BUILD_TYPE" ${EXTRA_CMAKE_ARGS:-} >/dev/null
# shellcheck disable=SC2086
ninja -C "$BUILD_DIR" -j "$JOBS" ${TARGETS:-}
