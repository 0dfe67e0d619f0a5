#!/usr/bin/env bash
# Builds OCI images of cloudcore, edgecore, edgectl and the example app (digits-classifier)
# from the project's build, and optionally pushes them.
#
#   scripts/build-images.sh [--build-dir DIR] [--out DIR] [--version V] [--no-build]
#                           [--push REGISTRY] [--dest-tls-verify=false] [--dest-creds USER:PASS]
#
#   --build-dir DIR   the CMake build tree (default build; the binaries are built first)
#   --out DIR         where the OCI image layouts go (default BUILD_DIR/images/NAME)
#   --version V       the images' tag (default: the project's version in CMakeLists.txt)
#   --no-build        use the binaries as they are in the build tree
#   --push REGISTRY   push them as REGISTRY/edgeplane/NAME:V with skopeo
#
# Each image is one layer holding the binary (/usr/bin/NAME, stripped, the entrypoint), the shared
# libraries it loads and the dynamic loader, /etc/passwd and /etc/group, the CA bundle and
# /tmp: no shell, no package manager. cloudcore, edgectl and the example app run as the user
# nonroot (65532); edgecore runs as root (it drives containerd, network namespaces and
# iptables). Labels: org.opencontainers.image.{title,version,revision,created}. Reproducible:
# every timestamp is the commit's (SOURCE_DATE_EPOCH), so two builds from one commit give the
# same digests. Prints NAME, reference, digest and compressed size per image.
set -euo pipefail
# Modes in the layers must not depend on who builds them.
umask 022
cd "$(dirname "$0")/.."

usage() {
  sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

BUILD_DIR=build OUT="" VERSION="" BUILD=1 PUSH="" SKOPEO_ARGS=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --build-dir) BUILD_DIR=${2:?--build-dir needs a value}; shift 2 ;;
    --out) OUT=${2:?--out needs a value}; shift 2 ;;
    --version) VERSION=${2:?--version needs a value}; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --push) PUSH=${2:?--push needs a registry}; shift 2 ;;
    --dest-tls-verify=*) SKOPEO_ARGS+=("$1"); shift ;;
    --dest-creds) SKOPEO_ARGS+=(--dest-creds "${2:?--dest-creds needs USER:PASS}"); shift 2 ;;
    -h | --help) usage ;;
    *) echo "build-images: unknown argument $1" >&2; usage ;;
  esac
done
if [[ -z $VERSION ]]; then
  VERSION=$(sed -n 's/^project(edgeplane VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
fi
[[ $VERSION =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] ||
  { echo "build-images: --version $VERSION: not a valid image tag" >&2; exit 2; }
mkdir -p "$BUILD_DIR"
BUILD_DIR=$(cd "$BUILD_DIR" && pwd)
OUT=${OUT:-$BUILD_DIR/images}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

TARGETS="cloudcore/cloudcore edgecore/edgecore edgectl/edgectl"
if [[ $BUILD == 1 ]]; then
  BUILD_DIR=$BUILD_DIR TARGETS="$TARGETS" bash scripts/build.sh >/dev/null
  # The example app where its dependencies are (examples/CMakeLists.txt).
  if ninja -C "$BUILD_DIR" -t targets all 2>/dev/null | grep -q '^examples/digits-classifier:'; then
    ninja -C "$BUILD_DIR" examples/digits-classifier >/dev/null
  fi
fi

SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || echo 0)
export SOURCE_DATE_EPOCH
REVISION=$(git rev-parse HEAD 2>/dev/null || echo unknown)
CREATED=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
# OCI's names for Debian's architectures (the image config's architecture and variant).
VARIANT=""
case $(dpkg --print-architecture) in
  amd64) ARCH=amd64 ;;
  arm64) ARCH=arm64 VARIANT=v8 ;;
  armhf) ARCH=arm VARIANT=v7 ;;
  i386) ARCH=386 ;;
  ppc64el) ARCH=ppc64le ;;
  *) ARCH=$(dpkg --print-architecture) ;;
esac
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT

# image NAME BINARY USER DATA_DIR ARGS...: stages the root file system and writes OUT/NAME.
# DATA_DIR ("" for none) exists in the image, private to USER, so that a volume mounted there
# starts with that owner.
image() {
  local name=$1 binary=$2 user=$3 data=$4 lib
  shift 4
  local root=$STAGE/$name
  mkdir -p "$root/usr/bin" "$root/etc/ssl/certs" "$root/tmp" "$root/var/lib/edgeplane"
  chmod 1777 "$root/tmp"
  if [[ -n $data ]]; then
    mkdir -p "$root$data"
    chmod 0700 "$root$data"
  fi
  install -m 0755 "$binary" "$root/usr/bin/$name"
  # Symbols stay in the build tree (half of the binary's size).
  strip --strip-unneeded "$root/usr/bin/$name"
  # The shared libraries and the loader, at the paths the binary asks for.
  while read -r lib; do
    [[ -f $lib ]] || continue
    mkdir -p "$root$(dirname "$lib")"
    # Modes as on the host: the loader must stay executable.
    install -m "$(stat -L -c %a "$lib")" "$lib" "$root$lib"
  done < <(ldd "$binary" | grep -o '/[^ ]*')
  [[ -f /etc/ssl/certs/ca-certificates.crt ]] &&
    install -m 0644 /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/var/lib/edgeplane:/sbin/nologin\n' \
    >"$root/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' >"$root/etc/group"
  chmod 0644 "$root/etc/passwd" "$root/etc/group"
  local cmd=() a
  for a in "$@"; do cmd+=("--cmd=$a"); done
  local owner=()
  [[ $user == 65532:65532 ]] && owner=(--owner var/lib/edgeplane=65532:65532)
  rm -rf "${OUT:?}/$name"
  local digest
  digest=$(python3 scripts/oci_image.py --rootfs "$root" --layout "$OUT/$name" \
    --ref "edgeplane/$name:$VERSION" --entrypoint "/usr/bin/$name" "${cmd[@]}" \
    --user "$user" --arch "$ARCH" --variant "$VARIANT" "${owner[@]}" --workdir /var/lib/edgeplane \
    --label "org.opencontainers.image.title=$name" \
    --label "org.opencontainers.image.version=$VERSION" \
    --label "org.opencontainers.image.revision=$REVISION" \
    --label "org.opencontainers.image.created=$CREATED")
  local size
  size=$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print(sum(l["size"] for l in m["layers"]) + m["config"]["size"])' \
    "$OUT/$name/blobs/sha256/${digest#sha256:}")
  printf '%-18s %-40s %s %s\n' "$name" "edgeplane/$name:$VERSION" "$digest" "$size"
  if [[ -n $PUSH ]]; then
    skopeo copy --quiet "${SKOPEO_ARGS[@]}" "oci:$OUT/$name:$VERSION" \
      "docker://$PUSH/edgeplane/$name:$VERSION" >&2
  fi
}

for bin in cloudcore edgecore edgectl; do
  [[ -x $BUILD_DIR/$bin/$bin ]] || { echo "build-images: $BUILD_DIR/$bin/$bin is missing" >&2; exit 1; }
done
printf '%-18s %-40s %-71s %s\n' NAME REFERENCE DIGEST BYTES
image cloudcore "$BUILD_DIR/cloudcore/cloudcore" 65532:65532 /var/lib/edgeplane/cloudcore \
  --data-dir /var/lib/edgeplane/cloudcore --api-listen 0.0.0.0:6443
image edgecore "$BUILD_DIR/edgecore/edgecore" 0:0 /var/lib/edgeplane/edgecore \
  --data-dir /var/lib/edgeplane/edgecore
image edgectl "$BUILD_DIR/edgectl/edgectl" 65532:65532 ""
if [[ -x $BUILD_DIR/examples/digits-classifier ]]; then
  image digits-classifier "$BUILD_DIR/examples/digits-classifier" 65532:65532 ""
fi
