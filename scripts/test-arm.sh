#!/usr/bin/env bash
# edgecore on arm64 and armhf, under emulation (docs/arm.md). Installs the cross toolchains,
# qemu-user and mmdebstrap, cross-builds for each architecture (scripts/build.sh --arch), builds
# this machine's cloudcore and edgectl, and runs the tests labelled arm
# (tests/integration/arm_edge_test.cc): each architecture's edgecore under qemu-user joins the
# native cloudcore with a token, goes Ready, serves its pods offline and catches up.
#   ARCHES (default "arm64 armhf"); ARM_TARGETS: what to cross-build (default edgecore edgectl
#   cloudcore; CI builds only edgecore, what the tests run); BUILD_DIR (the host's tree, build).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --arm
if [[ "${CI:-}" == "true" ]]; then
  export EXTRA_CMAKE_ARGS="${EXTRA_CMAKE_ARGS:-} -DEP_WERROR=ON"
fi
ARCHES=${ARCHES:-arm64 armhf}
HOST_BUILD=${BUILD_DIR:-build}
unset BUILD_DIR  # each architecture's tree is build-ARCH
for arch in $ARCHES; do
  echo "test-arm: building for $arch"
  TARGETS=${ARM_TARGETS:-edgecore edgectl cloudcore} bash scripts/build.sh --arch "$arch"
  # The tests' sysroot: the one the build used (EP_SYSROOT_DIR and XDG_CACHE_HOME honoured).
  export "EP_SYSROOT_${arch^^}=$(bash scripts/cross-sysroot.sh "$arch")"
  export "EP_BUILD_DIR_${arch^^}=$(pwd)/build-$arch"
done
BUILD_DIR=$HOST_BUILD TARGETS="arm_edge_test cloudcore edgectl" bash scripts/build.sh
filter=()
for arch in $ARCHES; do filter+=("$arch"); done
# ctest's names end in "/ARCH  # GetParam() = ARCH"; no test run is a failure, not a pass.
regex="^Arch/ArmEdgeTest\\..*/($(IFS='|'; echo "${filter[*]}"))( |\$)"
ctest --test-dir "$HOST_BUILD" --output-on-failure -L '^arm$' -R "$regex" --timeout 600 \
  --no-tests=error
