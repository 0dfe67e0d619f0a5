#!/usr/bin/env bash
# The tunnel at scale (docs/performance.md, "Security"): starts a cloudcore on a fresh data dir,
# joins and connects N simulated mTLS nodes (bench/edge_sim), measures connect, memory, CPU and
# apply -> all latency, then kills cloudcore with SIGKILL, starts it again on the same data dir
# and measures how long every node takes to reconnect and resync. Prints the simulator's report
# and the cloud's TLS handshake counters (resumed or full) after the restart.
#
#   bench/tunnel_scale.sh [--nodes N] [--dir DIR] [-- EDGE_SIM_ARGS...]
#
# Needs a build (BUILD_DIR, default build) and kubectl for the metrics. Each process here is
# limited by `ulimit -n`: one cloudcore holds about that many nodes.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
NODES=1000
DIR=/tmp/ep-tunnel-scale
while [ $# -gt 0 ]; do
  case "$1" in
    --nodes) NODES=$2; shift 2 ;;
    --dir) DIR=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
API=127.0.0.1:18443
TUNNEL=127.0.0.1:18444
rm -rf "$DIR"
mkdir -p "$DIR"
CC_PID=
start_cloudcore() {
  "$BUILD_DIR/cloudcore/cloudcore" --data-dir "$DIR/cloud" --api-listen "$API" \
    --tunnel-listen "$TUNNEL" --router-listen 127.0.0.1:0 --log-level warn >>"$DIR/cloudcore.log" 2>&1 &
  CC_PID=$!
}
cleanup() {
  [ -n "$CC_PID" ] && kill "$CC_PID" 2>/dev/null || true
  [ -n "${SIM_PID:-}" ] && kill "$SIM_PID" 2>/dev/null || true
}
trap cleanup EXIT
start_cloudcore
for _ in $(seq 1 150); do
  [ -f "$DIR/cloud/admin.kubeconfig" ] && curl -sk "https://$API/readyz" >/dev/null 2>&1 && break
  sleep 0.2
done
"$BUILD_DIR/bench/edge_sim" --cloud "$TUNNEL" --kubeconfig "$DIR/cloud/admin.kubeconfig" \
  --nodes "$NODES" --cloud-pid "$CC_PID" --idle-seconds 10 --rounds 2 --wait-restart "$@" \
  >"$DIR/sim.log" 2>&1 &
SIM_PID=$!
until grep -q "waiting for cloudcore to restart" "$DIR/sim.log" 2>/dev/null; do
  kill -0 "$SIM_PID" 2>/dev/null || { cat "$DIR/sim.log"; exit 1; }
  sleep 0.2
done
kill -9 "$CC_PID"
wait "$CC_PID" 2>/dev/null || true
start_cloudcore
wait "$SIM_PID" || true
SIM_PID=
cat "$DIR/sim.log"
echo "cloudcore after the restart: $(grep VmRSS "/proc/$CC_PID/status")"
kubectl --kubeconfig "$DIR/cloud/admin.kubeconfig" get --raw /metrics |
  grep '^edgeplane_cloudhub_tls_handshakes_total' || true
