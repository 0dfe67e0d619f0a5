#!/usr/bin/env bash
# Makes (once) a sysroot of Debian 12 packages for a target architecture, for cross builds
# (cmake/toolchains/*.cmake) and for running the result under qemu-user (-L SYSROOT).
#   scripts/cross-sysroot.sh arm64|armhf            prints the sysroot's path
#   scripts/cross-sysroot.sh --triple arm64|armhf   prints the GNU triple (the cross tools' prefix)
# The packages are Debian's own :ARCH builds, unpacked by mmdebstrap without running anything of
# the target architecture. They are not installed beside the host's with dpkg's multiarch:
# libwolfssl-dev and libyaml-cpp-dev are not Multi-Arch: same (the :arm64 one removes the
# host's), and libgrpc++-dev:arm64 removes debhelper.
#   EP_SYSROOT_DIR   where sysroots live (default ~/.cache/edgeplane)
#   DEBIAN_MIRROR    default http://deb.debian.org/debian (and its -security sibling)
set -euo pipefail
TRIPLE_ONLY=0
[[ ${1:-} == --triple ]] && { TRIPLE_ONLY=1; shift; }
ARCH=${1:-}
case $ARCH in
  arm64) TRIPLE=aarch64-linux-gnu ;;
  armhf) TRIPLE=arm-linux-gnueabihf ;;
  *) echo "usage: $0 [--triple] arm64|armhf" >&2; exit 2 ;;
esac
if ((TRIPLE_ONLY)); then
  echo "$TRIPLE"
  exit 0
fi
DIR=${EP_SYSROOT_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/edgeplane}
ROOT=$DIR/sysroot-$ARCH
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# What the edge binaries, edgectl and cloudcore link: the -dev packages of scripts/install-deps.sh
# that are libraries.
PACKAGES=libc6-dev,libstdc++-12-dev,libsqlite3-dev,libnghttp2-dev,libprotobuf-dev,libwolfssl-dev
PACKAGES+=,libyaml-cpp-dev,libspdlog-dev,libfmt-dev,zlib1g-dev,libssl-dev,libboost-dev
PACKAGES+=,libboost-system-dev,nlohmann-json3-dev,libcli11-dev,libgrpc++-dev
STAMP="$ARCH $MIRROR $PACKAGES"

if [[ -f $ROOT/.edgeplane-sysroot && $(cat "$ROOT/.edgeplane-sysroot") == "$STAMP" ]]; then
  echo "$ROOT"
  exit 0
fi
command -v mmdebstrap >/dev/null ||
  { echo "cross-sysroot: mmdebstrap is missing (apt-get install mmdebstrap)" >&2; exit 1; }
mkdir -p "$DIR"
rm -rf "$ROOT.new"
echo "cross-sysroot: unpacking Debian 12 $ARCH packages into $ROOT" >&2
# The shlibs files of every package (the dpkg database stays empty): what a cross-built Debian
# package depends on (scripts/build-debs.sh --arch).
mmdebstrap --quiet --variant=extract --architectures="$ARCH" --include="$PACKAGES" \
  --extract-hook='for d in "$1"/var/cache/apt/archives/*.deb; do
      dpkg-deb --ctrl-tarfile "$d" | tar -xO ./shlibs 2>/dev/null || true; done >"$1/shlibs"' \
  bookworm "$ROOT.new" "deb $MIRROR bookworm main" "deb ${MIRROR%/debian}/debian-security bookworm-security main" \
  >&2
# Absolute symbolic links (libz.so -> /lib/...) would resolve on the host: make them relative.
while IFS= read -r link; do
  ln -sfnr "$ROOT.new$(readlink "$link")" "$link"
done < <(find "$ROOT.new/usr" "$ROOT.new/lib" -type l -lname '/*')
# gRPC's CMake package names its code generators, which run on the build host: point them at
# the host's (protobuf-compiler-grpc) or, for generators this project never runs, at nothing.
for plugin in $(grep -oh 'bin/grpc_[a-z_]*_plugin' "$ROOT.new"/usr/lib/*/cmake/grpc/*.cmake | sort -u); do
  if [[ -x /usr/$plugin ]]; then ln -sfn "/usr/$plugin" "$ROOT.new/usr/$plugin"; else : >"$ROOT.new/usr/$plugin"; fi
done
echo "$STAMP" >"$ROOT.new/.edgeplane-sysroot"
rm -rf "$ROOT"
mv "$ROOT.new" "$ROOT"
echo "$ROOT"
