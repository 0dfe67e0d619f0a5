#!/usr/bin/env bash
# Prints the path of a Debian 12 (bookworm) minbase root file system holding PACKAGES, for
# containers of the project's tests (podman run --rootfs DIR:O, which leaves DIR untouched).
#
#   scripts/debian-rootfs.sh [PACKAGE,PACKAGE,...]
#
# debootstrap makes it once per package set, from the first Debian mirror apt uses here, under
# ROOTFS_CACHE (default /var/cache/edgeplane-test); later calls print the cached one. Needs
# root and debootstrap.
set -euo pipefail
INCLUDE=${1:-}
CACHE=${ROOTFS_CACHE:-/var/cache/edgeplane-test}
[[ $INCLUDE =~ ^[a-z0-9.+,:-]*$ ]] || { echo "debian-rootfs: bad package list: $INCLUDE" >&2; exit 2; }
command -v debootstrap >/dev/null || { echo "debian-rootfs: debootstrap is missing" >&2; exit 1; }

MIRROR=$(sed -n 's|^URIs: *\(http[^ ]*/debian\)/*$|\1|p' /etc/apt/sources.list.d/*.sources 2>/dev/null |
  head -1)
[[ -n $MIRROR ]] || MIRROR=$(sed -n 's|^deb \(http[^ ]*/debian\)/* bookworm .*|\1|p' \
  /etc/apt/sources.list 2>/dev/null | head -1)
MIRROR=${MIRROR:-http://deb.debian.org/debian}

KEY=$(printf 'bookworm minbase %s' "$INCLUDE" | sha256sum | cut -c1-16)
DIR=$CACHE/rootfs-bookworm-$KEY
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9
if [[ ! -f $DIR/.complete ]]; then
  rm -rf "$DIR.tmp"
  args=(--variant=minbase)
  [[ -n $INCLUDE ]] && args+=(--include="$INCLUDE")
  if ! debootstrap "${args[@]}" bookworm "$DIR.tmp" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1; then
    tail -20 "$CACHE/debootstrap.log" >&2
    echo "debian-rootfs: debootstrap from $MIRROR failed (log: $CACHE/debootstrap.log)" >&2
    exit 1
  fi
  # Smaller, and the same on every run: no package lists or downloaded archives.
  rm -rf "$DIR.tmp"/var/cache/apt/archives/*.deb "$DIR.tmp"/var/lib/apt/lists/*
  touch "$DIR.tmp/.complete"
  rm -rf "$DIR"
  mv "$DIR.tmp" "$DIR"
fi
echo "$DIR"
