#!/usr/bin/env bash
# Builds OCI images of cloudcore, edgecore, edgectl and the example app (digits-classifier)
# from the project's build, and optionally pushes them.
#
#   scripts/build-images.sh [--arch ARCH[,ARCH...]] [--images NAME[,NAME...]] [--build-dir DIR]
#                           [--out DIR] [--version V] [--no-build]
#                           [--push REGISTRY] [--dest-tls-verify=false] [--dest-creds USER:PASS]
#
#   --arch LIST       Debian architectures (default: this machine's); with more than one, each
#                     image's tag is a multi-architecture image index, one manifest per
#                     architecture. arm64 and armhf come from build-ARCH (scripts/build.sh
#                     --arch; their libraries from its sysroot; docs/arm.md)
#   --images LIST     which images (default cloudcore,edgecore,edgectl and, when built for this
#                     machine, digits-classifier)
#   --build-dir DIR   the CMake build tree (default build; the binaries are built first)
#   --out DIR         where the OCI image layouts go (default BUILD_DIR/images/NAME)
#   --version V       the images' tag (default: the project's version in CMakeLists.txt)
#   --no-build        use the binaries as they are in the build tree
#   --push REGISTRY   push them as REGISTRY/edgeplane/NAME:V with skopeo
#
# Each image (each architecture's, with several) is one layer holding the binary (/usr/bin/NAME, stripped, the entrypoint), the shared
# libraries it loads and the dynamic loader, /etc/passwd and /etc/group, the CA bundle and
# /tmp: no shell, no package manager. cloudcore, edgectl and the example app run as the user
# nonroot (65532); edgecore runs as root (it drives containerd, network namespaces and
# iptables). Labels: org.opencontainers.image.{title,version,revision,created}. Reproducible:
# every timestamp is the commit's (SOURCE_DATE_EPOCH), so two builds from one commit give the
# same digests. Prints NAME, reference, digest and compressed size per image (with several
# architectures: per architecture as REFERENCE#ARCH, then the index's digest and size).
set -euo pipefail
# Modes in the layers must not depend on who builds them.
umask 022
cd "$(dirname "$0")/.."

usage() {
  sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

HOST_ARCH=$(dpkg --print-architecture)
BUILD_DIR=build OUT="" VERSION="" BUILD=1 PUSH="" SKOPEO_ARGS=() ARCHES=$HOST_ARCH IMAGES=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --arch) ARCHES=${2:?--arch needs a value}; shift 2 ;;
    --images) IMAGES=${2:?--images needs a value}; shift 2 ;;
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

IFS=, read -r -a ARCH_LIST <<<"$ARCHES"
for arch in "${ARCH_LIST[@]}"; do
  [[ $arch == "$HOST_ARCH" || $arch == arm64 || $arch == armhf ]] ||
    { echo "build-images: --arch $arch: arm64, armhf or this machine's $HOST_ARCH" >&2; exit 2; }
done
DEFAULT_IMAGES=0
if [[ -z $IMAGES ]]; then
  DEFAULT_IMAGES=1
  IMAGES=cloudcore,edgecore,edgectl  # and the example app where it is built (below)
fi
IFS=, read -r -a IMAGE_LIST <<<"$IMAGES"
# The build tree of an architecture and where a binary lies in it.
tree() { [[ $1 == "$HOST_ARCH" ]] && echo "$BUILD_DIR" || echo "$(pwd)/build-$1"; }
binary_path() { [[ $2 == digits-classifier ]] && echo "$(tree "$1")/examples/$2" || echo "$(tree "$1")/$2/$2"; }
for name in "${IMAGE_LIST[@]}"; do
  case $name in
    cloudcore | edgecore | edgectl | digits-classifier) ;;
    *) echo "build-images: --images $name: cloudcore, edgecore, edgectl or digits-classifier" >&2; exit 2 ;;
  esac
done

if [[ $BUILD == 1 ]]; then
  for arch in "${ARCH_LIST[@]}"; do
    targets=""
    for name in "${IMAGE_LIST[@]}"; do
      [[ $name == digits-classifier ]] && targets+=" examples/$name" || targets+=" $name/$name"
    done
    if [[ $arch == "$HOST_ARCH" ]]; then
      BUILD_DIR=$BUILD_DIR TARGETS="$targets" bash scripts/build.sh >/dev/null
    else
      (unset BUILD_DIR; TARGETS="$targets" bash scripts/build.sh --arch "$arch" >/dev/null)
    fi
  done
  # The example app by default where its dependencies are (examples/CMakeLists.txt). grep reads
  # the whole list (no -q): ninja must not die of SIGPIPE under pipefail.
  if [[ $DEFAULT_IMAGES == 1 ]] &&
    ninja -C "$BUILD_DIR" -t targets all 2>/dev/null | grep '^examples/digits-classifier:' >/dev/null; then
    ninja -C "$BUILD_DIR" examples/digits-classifier >/dev/null
  fi
fi
# By default the example app is imaged where it was built: for this machine's architecture.
[[ $DEFAULT_IMAGES == 1 && -x $BUILD_DIR/examples/digits-classifier ]] && IMAGE_LIST+=(digits-classifier)

SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || echo 0)
export SOURCE_DATE_EPOCH
REVISION=$(git rev-parse HEAD 2>/dev/null || echo unknown)
CREATED=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
# OCI's names for Debian's architectures (the image config's architecture and variant).
oci_platform() {
  case $1 in
    amd64) echo "amd64 " ;;
    arm64) echo "arm64 v8" ;;
    armhf) echo "arm v7" ;;
    i386) echo "386 " ;;
    ppc64el) echo "ppc64le " ;;
    *) echo "$1 " ;;
  esac
}
# The shared libraries a binary of another architecture loads, and its loader, as paths in
# that architecture's sysroot (ldd cannot run it): DT_NEEDED, recursively, looked up in the
# directories its loader searches.
foreign_libs() {
  local sysroot=$1 binary=$2 triple=$3
  python3 - "$sysroot" "$binary" "$triple" <<'PYLIBS'
import os, re, subprocess, sys
root, binary, triple = sys.argv[1:]
dirs = [f"/lib/{triple}", f"/usr/lib/{triple}", "/lib", "/usr/lib"]
def elf(path, opt):
    return subprocess.run([f"{triple}-readelf", opt, "-W", path], capture_output=True,
                          text=True, check=True).stdout
interp = re.search(r"Requesting program interpreter: (\S+)\]", elf(binary, "-l"))
todo, seen, out = [binary], set(), []
if interp:
    out.append(interp.group(1))
while todo:
    for soname in re.findall(r"\(NEEDED\)\s+Shared library: \[(\S+)\]", elf(todo.pop(), "-d")):
        if soname in seen:
            continue
        seen.add(soname)
        for d in dirs:
            if os.path.exists(root + d + "/" + soname):
                out.append(d + "/" + soname)
                todo.append(root + d + "/" + soname)
                break
        else:
            sys.exit(f"build-images: {soname} ({binary}) is not in {root}")
print("\n".join(out))
PYLIBS
}
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT

# image ARCH NAME USER DATA_DIR ARGS...: stages the root file system of NAME for ARCH and adds
# it to OUT/NAME (as the tag's manifest, or one of its index's with several architectures).
# DATA_DIR ("" for none) exists in the image, private to USER, so that a volume mounted there
# starts with that owner.
image() {
  local arch=$1 name=$2 user=$3 data=$4 lib
  shift 4
  local binary root=$STAGE/$arch/$name sysroot="" triple="" strip=strip
  binary=$(binary_path "$arch" "$name")
  [[ -x $binary ]] || { echo "build-images: $binary is missing" >&2; exit 1; }
  if [[ $arch != "$HOST_ARCH" ]]; then
    sysroot=$(bash scripts/cross-sysroot.sh "$arch")
    triple=$(bash scripts/cross-sysroot.sh --triple "$arch")
    strip=$triple-strip
  fi
  mkdir -p "$root/usr/bin" "$root/etc/ssl/certs" "$root/tmp" "$root/var/lib/edgeplane"
  chmod 1777 "$root/tmp"
  if [[ -n $data ]]; then
    mkdir -p "$root$data"
    chmod 0700 "$root$data"
  fi
  install -m 0755 "$binary" "$root/usr/bin/$name"
  # Symbols stay in the build tree (half of the binary's size).
  "$strip" --strip-unneeded "$root/usr/bin/$name"
  # The shared libraries and the loader, at the paths the binary asks for.
  local libs
  if [[ -n $sysroot ]]; then
    libs=$(foreign_libs "$sysroot" "$binary" "$triple") || exit 1
  else
    libs=$(ldd "$binary" | grep -o '/[^ ]*') || exit 1
  fi
  while read -r lib; do
    [[ -f $sysroot$lib ]] || continue
    mkdir -p "$root$(dirname "$lib")"
    # Modes as on the host: the loader must stay executable.
    install -m "$(stat -L -c %a "$sysroot$lib")" "$sysroot$lib" "$root$lib"
  done <<<"$libs"
  # cloudcore's dashboard files (the same on every architecture), where it looks for them:
  # /usr/bin/../share/edgeplane/dashboard.
  if [[ $name == cloudcore ]]; then
    local dash=$(dirname "$binary")/dashboard
    [[ -f $dash/SHA256SUMS ]] || dash=build/cloudcore/dashboard
    if [[ -f $dash/SHA256SUMS ]]; then
      mkdir -p "$root/usr/share/edgeplane"
      cp -r "$dash" "$root/usr/share/edgeplane/dashboard"
    else
      echo "build-images: no dashboard files (scripts/build-dashboard.sh): /ui/ will answer 503" >&2
    fi
  fi
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
  local digest platform multi=()
  read -r -a platform <<<"$(oci_platform "$arch")"
  ((${#ARCH_LIST[@]} > 1)) && multi=(--multi-arch)
  digest=$(python3 scripts/oci_image.py --rootfs "$root" --layout "$OUT/$name" \
    --ref "edgeplane/$name:$VERSION" --entrypoint "/usr/bin/$name" "${cmd[@]}" "${multi[@]}" \
    --user "$user" --arch "${platform[0]}" --variant "${platform[1]:-}" "${owner[@]}" \
    --workdir /var/lib/edgeplane \
    --label "org.opencontainers.image.title=$name" \
    --label "org.opencontainers.image.version=$VERSION" \
    --label "org.opencontainers.image.revision=$REVISION" \
    --label "org.opencontainers.image.created=$CREATED")
  local size
  size=$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print(sum(l["size"] for l in m["layers"]) + m["config"]["size"])' \
    "$OUT/$name/blobs/sha256/${digest#sha256:}")
  # With several architectures, a row per architecture (REFERENCE#ARCH), then the index's.
  local ref=edgeplane/$name:$VERSION
  ((${#ARCH_LIST[@]} > 1)) && ref+="#$arch"
  printf '%-18s %-40s %s %s\n' "$name" "$ref" "$digest" "$size"
}

printf '%-18s %-40s %-71s %s\n' NAME REFERENCE DIGEST BYTES
for name in "${IMAGE_LIST[@]}"; do
  rm -rf "${OUT:?}/$name"
  for arch in "${ARCH_LIST[@]}"; do
    [[ $name == digits-classifier && $DEFAULT_IMAGES == 1 && $arch != "$HOST_ARCH" ]] && continue
    case $name in
      cloudcore) image "$arch" cloudcore 65532:65532 /var/lib/edgeplane/cloudcore \
                   --data-dir /var/lib/edgeplane/cloudcore --api-listen 0.0.0.0:6443 ;;
      edgecore) image "$arch" edgecore 0:0 /var/lib/edgeplane/edgecore \
                  --data-dir /var/lib/edgeplane/edgecore ;;
      *) image "$arch" "$name" 65532:65532 "" ;;
    esac
  done
  if ((${#ARCH_LIST[@]} > 1)); then
    python3 -c 'import json,sys; m=json.load(open(sys.argv[1]))["manifests"][0]; print("%-18s %-40s %s %s" % (sys.argv[2], sys.argv[3], m["digest"], m["size"]))' \
      "$OUT/$name/index.json" "$name" "edgeplane/$name:$VERSION"
  fi
  if [[ -n $PUSH ]]; then
    skopeo copy --quiet --all "${SKOPEO_ARGS[@]}" "oci:$OUT/$name:$VERSION" \
      "docker://$PUSH/edgeplane/$name:$VERSION" >&2
  fi
done
