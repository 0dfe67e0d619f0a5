#!/usr/bin/env bash
# podman for podman-compose 1.0 (Debian 12's), which gives every container the project's
# network (--net NAME --network-alias SERVICE) even when the service says network_mode: host,
# and podman then refuses the container. Used as `podman-compose --podman-path THIS`
# (scripts/ci-containers.sh): for a container on the host's network those two options are
# dropped; everything else goes to podman unchanged. Newer podman-compose and docker compose
# need none of this.
set -euo pipefail
host=0 prev=""
for a in "$@"; do
  if [[ $prev == --network && $a == host ]]; then host=1; fi
  prev=$a
done
if [[ $host == 0 ]]; then exec podman "$@"; fi
args=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --net | --network-alias) shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
exec podman "${args[@]}"
