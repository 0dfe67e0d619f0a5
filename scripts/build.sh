#!/usr/bin/env bash
# Configures and builds everything with Ninja and ccache.
#   scripts/build.sh [--arch arm64|armhf|HOST]
#   BUILD_DIR (default build, or build-ARCH for another architecture), BUILD_TYPE (default
#   Release), EXTRA_CMAKE_ARGS, TARGETS (ninja targets, space separated; default all, or
#   edgecore edgectl cloudcore for another architecture).
# --arch cross-compiles with Debian's cross toolchain (crossbuild-essential-ARCH) against a
# sysroot of Debian's ARCH packages (scripts/cross-sysroot.sh; cmake/toolchains/ARCH.cmake);
# tests and benchmarks are not built, and the binaries run under qemu-user (docs/arm.md).
set -euo pipefail
cd "$(dirname "$0")/.."
HOST_ARCH=$(dpkg --print-architecture 2>/dev/null || echo amd64)
ARCH=$HOST_ARCH
while (($#)); do
  case $1 in
    --arch) ARCH=${2:?--arch needs arm64, armhf or $HOST_ARCH}; shift 2 ;;
    --arch=*) ARCH=${1#--arch=}; shift ;;
    *) echo "build.sh: unknown argument '$1' (usage: $0 [--arch arm64|armhf|$HOST_ARCH])" >&2; exit 2 ;;
  esac
done
CROSS_ARGS=()
if [[ $ARCH != "$HOST_ARCH" ]]; then
  case $ARCH in
    arm64 | armhf) ;;
    *) echo "build.sh: --arch $ARCH: supported are arm64, armhf and the host's $HOST_ARCH" >&2; exit 2 ;;
  esac
  triple=$(bash scripts/cross-sysroot.sh --triple "$ARCH")
  command -v "$triple-g++" >/dev/null ||
    { echo "build.sh: $triple-g++ is missing (apt-get install crossbuild-essential-$ARCH)" >&2; exit 1; }
  SYSROOT=$(bash scripts/cross-sysroot.sh "$ARCH")
  CROSS_ARGS=(-DCMAKE_TOOLCHAIN_FILE="$(pwd)/cmake/toolchains/$ARCH.cmake" -DEP_SYSROOT="$SYSROOT"
              -DEP_BUILD_TESTS=OFF -DEP_BUILD_BENCH=OFF)
  BUILD_DIR=${BUILD_DIR:-build-$ARCH}
  TARGETS=${TARGETS:-edgecore edgectl cloudcore}
fi
BUILD_DIR=${BUILD_DIR:-build}
BUILD_TYPE=${BUILD_TYPE:-Release}
JOBS=${JOBS:-$(nproc)}
# Hits across clones and build dirs: paths are hashed relative to the repository.
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$(pwd)}
export CCACHE_NOHASHDIR=1
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/ccache}
export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-5G}
# shellcheck disable=SC2086
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE="$BUILD_TYPE" "${CROSS_ARGS[@]}" \
  ${EXTRA_CMAKE_ARGS:-} >/dev/null
# shellcheck disable=SC2086
ninja -C "$BUILD_DIR" -j "$JOBS" ${TARGETS:-}
# The dashboard's files beside cloudcore (BUILD_DIR/cloudcore/dashboard), for native builds of it.
if [[ $ARCH == "$HOST_ARCH" && ( -z ${TARGETS:-} || " $TARGETS " =~ \ (cloudcore/)?cloudcore\  ) ]]; then
  BUILD_DIR="$BUILD_DIR" bash scripts/build-dashboard.sh
fi
