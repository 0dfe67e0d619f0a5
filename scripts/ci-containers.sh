#!/usr/bin/env bash
# The one command a CI job runs to try the platform in containers (docs/install.md, "Cloud and
# edges in containers"): builds the images, starts deploy/compose/compose.yaml (cloudcore and
# two edgecores), waits until both nodes are Ready and the sample application
# (deploy/samples/app.yaml) is Running, prints the state, tears everything down, and exits 0
# only if all of that succeeded.
#
#   scripts/ci-containers.sh [--control-plane-only] [--keep] [--timeout SECONDS]
#                            [--build-dir DIR] [--no-build]
#
#   --control-plane-only  edges without a container runtime (the edgecore image,
#                         --runtime-endpoint ""): waits for the nodes only
#   --keep                leave everything running (prints how to reach it and to stop it)
#   --timeout SECONDS     for the nodes and for the app, each (default 300)
#
# Needs root, podman and podman-compose (or docker with compose: COMPOSE="docker compose"),
# skopeo, and for edges with pods debootstrap and the registry tools of scripts/cri-env.sh
# (scripts/install-deps.sh installs them all). Ports: EDGEPLANE_API_PORT (16443),
# EDGEPLANE_TUNNEL_PORT (16444), EDGEPLANE_ROUTER_PORT (16445), EDGEPLANE_EDGE1_LOCAL_PORT
# (16550), EDGEPLANE_EDGE2_LOCAL_PORT (16551), EP_REGISTRY_PORT (5000), EP_SECURE_REGISTRY_PORT
# (5443).
set -euo pipefail
umask 022
cd "$(dirname "$0")/.."
ROOT=$PWD
start=$(date +%s)
say() { echo "ci-containers: [$(($(date +%s) - start))s] $*"; }
die() {
  echo "ci-containers: error: $*" >&2
  exit 1
}

CONTROL_PLANE_ONLY=0 KEEP=0 TIMEOUT=300 BUILD_DIR=build BUILD=1
while [[ $# -gt 0 ]]; do
  case $1 in
    --control-plane-only) CONTROL_PLANE_ONLY=1; shift ;;
    --keep) KEEP=1; shift ;;
    --timeout) TIMEOUT=${2:?--timeout needs seconds}; shift 2 ;;
    --build-dir) BUILD_DIR=${2:?--build-dir needs a value}; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "ci-containers: unknown argument $1 (--help)" >&2; exit 2 ;;
  esac
done
[[ $TIMEOUT =~ ^[0-9]+$ ]] || { echo "ci-containers: --timeout: seconds expected" >&2; exit 2; }
[[ $(id -u) -eq 0 ]] || die "must run as root (privileged containers, host network)"
read -r -a COMPOSE_CMD <<<"${COMPOSE:-podman-compose}"
command -v "${COMPOSE_CMD[0]}" >/dev/null || die "${COMPOSE_CMD[0]} not found (scripts/install-deps.sh)"
for tool in podman skopeo; do command -v "$tool" >/dev/null || die "$tool not found"; done

COMPOSE_ARGS=(-p edgeplane -f "$ROOT/deploy/compose/compose.yaml")
# Debian 12's podman-compose (1.0.3) needs help with network_mode: host.
if [[ ${COMPOSE_CMD[0]} == podman-compose ]]; then
  COMPOSE_ARGS=(--podman-path "$ROOT/deploy/compose/podman-host-network.sh" "${COMPOSE_ARGS[@]}")
fi
compose() { "${COMPOSE_CMD[@]}" "${COMPOSE_ARGS[@]}" "$@"; }
remove_project_containers() {
  local c
  for c in $(podman ps -aq --filter label=io.podman.compose.project=edgeplane); do
    podman rm -f "$c" >/dev/null 2>&1 || true
  done
}
teardown() {
  local rc=$?
  if [[ $KEEP == 1 && $rc == 0 ]]; then
    say "left running; kubeconfig: $EDGEPLANE_STATE/cloudcore/admin.kubeconfig"
    say "to stop: EDGEPLANE_STATE=$EDGEPLANE_STATE ${COMPOSE_CMD[*]} ${COMPOSE_ARGS[*]} down;" \
      "EP_CNI_BRIDGE=$EP_CNI_BRIDGE bash scripts/cri-env.sh down $WORK/registry;" \
      "ip link delete ep-edge1; ip link delete ep-edge2; rm -rf $WORK"
    return
  fi
  say "tearing down"
  compose down -t 10 >/dev/null 2>&1 || true
  remove_project_containers
  podman network rm -f edgeplane_default >/dev/null 2>&1 || true
  if [[ -d $WORK/registry ]]; then
    bash scripts/cri-env.sh down "$WORK/registry" >/dev/null 2>&1 || true
  fi
  ip link delete ep-edge1 2>/dev/null || true
  ip link delete ep-edge2 2>/dev/null || true
  local image
  for image in "${IMPORTED[@]}"; do podman rmi -f "$image" >/dev/null 2>&1 || true; done
  rm -rf "$WORK"
  if [[ $rc == 0 ]]; then say "ok"; else say "FAILED (exit $rc)"; fi
}

# scripts/cri-env.sh for the pods' registry, with a bridge name of this run's: its "down" then
# never touches another environment's (scripts/up.sh's ep-cri0).
export EP_CNI_BRIDGE=epci$$ EP_CNI_SUBNET=10.244.93.0/24
IMPORTED=()  # images this run put into podman's storage: removed at the end
VERSION=$(sed -n 's/^project(edgeplane VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
WORK=$(mktemp -d /var/tmp/edgeplane-ci-containers.XXXXXX)
trap teardown EXIT
export EDGEPLANE_VERSION=$VERSION
export EDGEPLANE_STATE=$WORK/state
export EDGEPLANE_API_PORT=${EDGEPLANE_API_PORT:-16443}
export EDGEPLANE_TUNNEL_PORT=${EDGEPLANE_TUNNEL_PORT:-16444}
export EP_REGISTRY_PORT=${EP_REGISTRY_PORT:-5000}
export EP_REGISTRY=127.0.0.1:$EP_REGISTRY_PORT
mkdir -p "$EDGEPLANE_STATE"/{cloudcore,join,edge-1,edge-2,edge-1-containerd,edge-2-containerd}

# 1. Images: cloudcore, edgecore, edgectl (scripts/build-images.sh), into podman's storage.
say "building the images"
build_args=(--build-dir "$BUILD_DIR" --out "$WORK/images")
[[ $BUILD == 1 ]] || build_args+=(--no-build)
bash scripts/build-images.sh "${build_args[@]}" >"$WORK/build-images.log" ||
  { cat "$WORK/build-images.log"; die "scripts/build-images.sh failed"; }
for name in cloudcore edgecore edgectl; do
  skopeo copy --quiet "oci:$WORK/images/$name:$VERSION" \
    "containers-storage:localhost/edgeplane/$name:$VERSION"
  IMPORTED+=("localhost/edgeplane/$name:$VERSION")
done
if [[ $CONTROL_PLANE_ONLY == 1 ]]; then
  export EDGEPLANE_EDGE_IMAGE=localhost/edgeplane/edgecore:$VERSION
  export EDGEPLANE_RUNTIME_ENDPOINT=""
else
  # The node image: Debian 12 with containerd, runc and the CNI plugins, plus this edgecore
  # (its shared libraries come along: the build is Debian 12's too) and the entry point that
  # starts containerd first (deploy/compose/edge-node-entrypoint.sh).
  say "building the edge-node image (containerd inside)"
  base=$(bash scripts/debian-rootfs.sh containerd,runc,containernetworking-plugins,iptables)
  node=$WORK/node-rootfs
  cp -a "$base" "$node"
  rm -rf "${node:?}"/dev/* "$node/.complete"
  install -m 0755 "$BUILD_DIR/edgecore/edgecore" "$node/usr/bin/edgecore"
  while read -r lib; do
    [[ -f $lib && ! -e $node$lib ]] || continue
    mkdir -p "$node$(dirname "$lib")"
    cp -L "$lib" "$node$lib"
  done < <(ldd "$BUILD_DIR/edgecore/edgecore" | grep -o '/[^ ]*')
  install -m 0755 deploy/compose/edge-node-entrypoint.sh "$node/usr/local/bin/edge-node-entrypoint"
  tar -C "$node" -c . | podman import --quiet \
    --change 'ENTRYPOINT ["/usr/local/bin/edge-node-entrypoint"]' \
    - "localhost/edgeplane/edge-node:$VERSION" >/dev/null
  IMPORTED+=("localhost/edgeplane/edge-node:$VERSION")
  export EDGEPLANE_EDGE_IMAGE=localhost/edgeplane/edge-node:$VERSION
  # 2. The pods' images: the registry of scripts/cri-env.sh (busybox httpd as httpd:1, pause).
  say "starting the registry for the pods' images"
  bash scripts/cri-env.sh registries "$WORK/registry" >"$WORK/registry.log" 2>&1 ||
    { cat "$WORK/registry.log"; die "the registry did not start"; }
fi

# 3. The compose project.
say "starting cloudcore and two edgecores ($EDGEPLANE_EDGE_IMAGE)"
remove_project_containers  # an earlier run's, which podman-compose 1.0 would only restart
compose up -d >"$WORK/compose-up.log" 2>&1 || { cat "$WORK/compose-up.log"; die "compose up failed"; }
# podman-compose 1.0 does not report a container that failed to start.
[[ $(podman ps -q --filter label=io.podman.compose.project=edgeplane | wc -l) -eq 3 ]] ||
  { cat "$WORK/compose-up.log"; die "compose up did not start three containers"; }
KUBECONFIG_FILE=$EDGEPLANE_STATE/cloudcore/admin.kubeconfig
EDGECTL=("$BUILD_DIR/edgectl/edgectl" --kubeconfig "$KUBECONFIG_FILE")
wait_for() {  # SECONDS WHAT COMMAND...
  local limit=$1 what=$2
  shift 2
  for ((i = 0; i < limit; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 1
  done
  say "$what: not within ${limit}s"
  return 1
}
ready_nodes() {
  [[ $("${EDGECTL[@]}" get nodes -o \
    'jsonpath={range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' |
    grep -c True) -eq 2 ]]
}
running_app() {
  [[ $("${EDGECTL[@]}" get pods -l app=hello -o 'jsonpath={range .items[*]}{.status.phase}{"\n"}{end}' |
    grep -c Running) -eq 2 ]]
}
show() {
  "${EDGECTL[@]}" get nodes -o wide || true
  "${EDGECTL[@]}" get pods -A -o wide || true
}
fail() {
  show
  local c
  for c in $(podman ps -a --filter label=io.podman.compose.project=edgeplane --format '{{.Names}}'); do
    echo "---- $c (log tail) ----"
    podman logs --tail 30 "$c" 2>&1 || true
  done
  die "$*"
}

wait_for 60 "cloudcore's admin kubeconfig" test -s "$KUBECONFIG_FILE" || fail "cloudcore did not start"
say "waiting for both nodes to be Ready"
wait_for "$TIMEOUT" "two Ready nodes" ready_nodes || fail "the nodes are not Ready"
if [[ $CONTROL_PLANE_ONLY == 0 ]]; then
  say "applying the sample application (deploy/samples/app.yaml)"
  sed "s|127.0.0.1:5000/|$EP_REGISTRY/|" deploy/samples/app.yaml | "${EDGECTL[@]}" apply -f - >/dev/null
  wait_for "$TIMEOUT" "the sample application Running" running_app || fail "the sample application is not Running"
fi
say "state:"
show
say "ready after $(($(date +%s) - start))s"
