#!/usr/bin/env bash
# Builds the Debian packages cloudcore, edgecore and edgectl from the project's build, and
# checks them with lintian.
#
#   scripts/build-debs.sh [--arch ARCH] [--build-dir DIR] [--out DIR] [--version V] [--no-lintian]
#
#   --arch ARCH      arm64 or armhf: cross-built packages (scripts/build.sh --arch; docs/arm.md)
#                    (default: this machine's architecture)
#   --build-dir DIR  the CMake build tree (default build, or build-ARCH with --arch; the three
#                    binaries are built there first if they are missing or stale)
#   --out DIR        where the .deb files go (default BUILD_DIR/debs)
#   --version V      the packages' version (default: the project's version in CMakeLists.txt)
#   --no-lintian     skip the lintian check
#   --no-build       package the binaries as they are in the build tree
#
# The packaging is deploy/debian (debhelper): binaries in /usr/bin, systemd units (cloudcore
# runs as the system user cloudcore and starts on install; edgecore is enabled and waits for its
# join), default configurations in /etc/edgeplane as conffiles. Building twice from the same
# commit gives the same files (SOURCE_DATE_EPOCH is the commit's time). Prints the paths of the
# packages. Needs debhelper and lintian (scripts/install-deps.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

HOST_ARCH=$(dpkg --print-architecture)
ARCH=$HOST_ARCH BUILD_DIR="" OUT="" VERSION="" LINTIAN=1 BUILD=1
while [[ $# -gt 0 ]]; do
  case $1 in
    --arch) ARCH=${2:?--arch needs a value}; shift 2 ;;
    --build-dir) BUILD_DIR=${2:?--build-dir needs a value}; shift 2 ;;
    --out) OUT=${2:?--out needs a value}; shift 2 ;;
    --version) VERSION=${2:?--version needs a value}; shift 2 ;;
    --no-lintian) LINTIAN=0; shift ;;
    --no-build) BUILD=0; shift ;;
    -h | --help) usage ;;
    *) echo "build-debs: unknown argument $1" >&2; usage ;;
  esac
done
for tool in dpkg-buildpackage dh; do
  command -v "$tool" >/dev/null ||
    { echo "build-debs: $tool is missing (apt-get install debhelper dpkg-dev)" >&2; exit 1; }
done
if [[ -z $VERSION ]]; then
  VERSION=$(sed -n 's/^project(edgeplane VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
fi
[[ $VERSION =~ ^[0-9][A-Za-z0-9.+~]*$ ]] ||
  { echo "build-debs: --version $VERSION: not a Debian native version" >&2; exit 2; }
ARCH_ARGS=() SYSROOT=""
if [[ $ARCH != "$HOST_ARCH" ]]; then
  case $ARCH in
    arm64 | armhf) ;;
    *) echo "build-debs: --arch $ARCH: arm64, armhf or this machine's $HOST_ARCH" >&2; exit 2 ;;
  esac
  ARCH_ARGS=(--arch "$ARCH")
  SYSROOT=$(bash scripts/cross-sysroot.sh "$ARCH")
  BUILD_DIR=${BUILD_DIR:-build-$ARCH}
fi
BUILD_DIR=${BUILD_DIR:-build}
mkdir -p "$BUILD_DIR"
BUILD_DIR=$(cd "$BUILD_DIR" && pwd)
OUT=${OUT:-$BUILD_DIR/debs}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# The binaries (a no-op when they are up to date).
if [[ $BUILD == 1 ]]; then
  BUILD_DIR=$BUILD_DIR TARGETS="cloudcore/cloudcore edgecore/edgecore edgectl/edgectl" \
    bash scripts/build.sh "${ARCH_ARGS[@]}" >/dev/null
fi
# The dashboard's files (the same on every architecture), installed with cloudcore.
if [[ $BUILD == 1 && ! -f $BUILD_DIR/cloudcore/dashboard/SHA256SUMS ]]; then
  BUILD_DIR=$BUILD_DIR bash scripts/build-dashboard.sh >/dev/null
fi
for bin in cloudcore edgecore edgectl; do
  [[ -x $BUILD_DIR/$bin/$bin ]] || { echo "build-debs: $BUILD_DIR/$bin/$bin is missing" >&2; exit 1; }
done
[[ -f $BUILD_DIR/cloudcore/dashboard/SHA256SUMS ]] ||
  { echo "build-debs: $BUILD_DIR/cloudcore/dashboard is missing (scripts/build-dashboard.sh)" >&2; exit 1; }

SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || date +%s)
export SOURCE_DATE_EPOCH
REVISION=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)

STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
SRC=$STAGE/edgeplane-$VERSION
mkdir -p "$SRC/staged"
cp -r deploy/debian "$SRC/debian"
for bin in cloudcore edgecore edgectl; do
  cp "$BUILD_DIR/$bin/$bin" "$SRC/staged/$bin"
done
cp deploy/cloudcore.yaml deploy/edgecore.yaml "$SRC/staged/"
cp -r "$BUILD_DIR/cloudcore/dashboard" "$SRC/staged/dashboard"
# The units of deploy/systemd, for the packaged paths; cloudcore as its own user.
for unit in cloudcore edgecore; do
  sed -e 's|/usr/local/bin/|/usr/bin/|g' \
    -e "s|file:///usr/share/doc/edgeplane/README.md|file:///usr/share/doc/$unit/README.md|" \
    "deploy/systemd/$unit.service" >"$SRC/debian/$unit.service"
  cp README.md "$SRC/staged/README.md"
  echo "staged/README.md" >"$SRC/debian/$unit.docs"
done
sed -i 's|^\[Service\]$|[Service]\nUser=cloudcore\nGroup=cloudcore|' "$SRC/debian/cloudcore.service"
{
  echo "edgeplane ($VERSION) unstable; urgency=medium"
  echo
  echo "  * Built from revision $REVISION."
  echo
  echo " -- EdgePlane developers <dev@edgeplane.io>  $(date -R -u -d "@$SOURCE_DATE_EPOCH")"
} >"$SRC/debian/changelog"

# Another architecture: its libraries and their shlibs files are in the sysroot, not in this
# machine's dpkg database (deploy/debian/rules passes the sysroot's library directories on).
BUILDPACKAGE=(dpkg-buildpackage -b -us -uc -d)
if [[ -n $SYSROOT ]]; then
  cp "$SYSROOT/shlibs" "$SRC/debian/shlibs.local"
  BUILDPACKAGE+=(-a "$ARCH")
fi
(cd "$SRC" && EP_SYSROOT=$SYSROOT "${BUILDPACKAGE[@]}" >"$STAGE/build.log" 2>&1) || {
  tail -40 "$STAGE/build.log" >&2
  echo "build-debs: dpkg-buildpackage failed" >&2
  exit 1
}
DEBS=()
for pkg in cloudcore edgecore edgectl; do
  deb=${pkg}_${VERSION}_${ARCH}.deb
  mv -f "$STAGE/$deb" "$OUT/$deb"
  DEBS+=("$OUT/$deb")
done

if [[ $LINTIAN == 1 ]]; then
  command -v lintian >/dev/null ||
    { echo "build-debs: lintian is missing (apt-get install lintian)" >&2; exit 1; }
  # Errors fail the build; warnings are printed.
  lintian --fail-on error \
    "${DEBS[@]}" >&2 || { echo "build-debs: lintian found errors" >&2; exit 1; }
fi
printf '%s\n' "${DEBS[@]}"
