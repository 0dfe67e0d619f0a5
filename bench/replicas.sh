#!/usr/bin/env bash
# Several cloudcores on etcd (docs/deployment.md; results in docs/performance.md, "Replicas"):
# starts an etcd cluster on loopback (--etcd-members, 1 or 3), --replicas cloudcores on it that
# share one PKI (the first one's pki/, copied), and one bench/edge_sim per replica with
# --nodes / --replicas nodes each (a process holds about `ulimit -n` connections). Simulator i
# connects its nodes to replica i's tunnel and applies its ConfigMap changes through replica
# i+1's API, so its apply -> received latency crosses replicas through etcd. It prints each
# simulator's report (that replica's RSS per node and CPU while its nodes heartbeat) and etcd's
# CPU over the same window; then kills the leader with SIGKILL and measures how long until
# another replica holds the Lease kube-system/cloudcore.
#
#   bench/replicas.sh [--nodes N] [--replicas R] [--etcd-members M] [--dir DIR] [-- EDGE_SIM_ARGS...]
#
# Needs a build (BUILD_DIR, default build), etcd (etcd-server) and kubectl.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
NODES=1000
REPLICAS=2
MEMBERS=1
DIR=/tmp/ep-replicas
while [ $# -gt 0 ]; do
  case "$1" in
    --nodes) NODES=$2; shift 2 ;;
    --replicas) REPLICAS=$2; shift 2 ;;
    --etcd-members) MEMBERS=$2; shift 2 ;;
    --dir) DIR=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
rm -rf "$DIR"
mkdir -p "$DIR"
PIDS=()
# Stops everything this run started and waits for it, so that the next run finds its ports free.
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

# etcd: members on 127.0.0.1:2379+2i (clients) and 2380+2i (peers), ports from 23790.
cluster=""
endpoints=""
for i in $(seq 0 $((MEMBERS - 1))); do
  cluster+="${cluster:+,}m$i=http://127.0.0.1:$((23791 + 2 * i))"
  endpoints+="${endpoints:+,}127.0.0.1:$((23790 + 2 * i))"
done
ETCD_PIDS=()
for i in $(seq 0 $((MEMBERS - 1))); do
  client=http://127.0.0.1:$((23790 + 2 * i))
  peer=http://127.0.0.1:$((23791 + 2 * i))
  etcd --name "m$i" --data-dir "$DIR/etcd-m$i" --listen-client-urls "$client" \
    --advertise-client-urls "$client" --listen-peer-urls "$peer" \
    --initial-advertise-peer-urls "$peer" --initial-cluster "$cluster" \
    --initial-cluster-token ep-bench --initial-cluster-state new \
    --quota-backend-bytes $((8 * 1024 * 1024 * 1024)) >"$DIR/etcd-m$i.log" 2>&1 &
  PIDS+=($!)
  ETCD_PIDS+=($!)
done
for _ in $(seq 1 150); do
  ETCDCTL_API=3 etcdctl --endpoints "$endpoints" endpoint health >/dev/null 2>&1 && break
  sleep 0.2
done
STORE="etcd://$endpoints"

# Replicas: API on 18500+i, tunnel on 18600+i.
CC_PIDS=()
start_replica() {
  local i=$1
  "$BUILD_DIR/cloudcore/cloudcore" --data-dir "$DIR/cloud$i" --store "$STORE" \
    --api-listen "127.0.0.1:$((18500 + i))" --tunnel-listen "127.0.0.1:$((18600 + i))" \
    --router-listen 127.0.0.1:0 --log-level warn >>"$DIR/cloudcore$i.log" 2>&1 &
  CC_PIDS[i]=$!
  PIDS+=($!)
  for _ in $(seq 1 150); do
    curl -sk "https://127.0.0.1:$((18500 + i))/readyz" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "replica $i did not start:" >&2
  cat "$DIR/cloudcore$i.log" >&2
  exit 1
}
start_replica 0
for i in $(seq 1 $((REPLICAS - 1))); do
  mkdir -p "$DIR/cloud$i"
  cp -a "$DIR/cloud0/pki" "$DIR/cloud$i/pki"
  start_replica "$i"
done
KUBECONFIG_FILE=$DIR/cloud0/admin.kubeconfig
kc() { kubectl --kubeconfig "$KUBECONFIG_FILE" "$@"; }

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)
etcd_ticks() {
  local t=0
  for p in "${ETCD_PIDS[@]}"; do t=$((t + $(cpu_ticks "$p"))); done
  echo "$t"
}

# One simulator per replica.
SIM_PIDS=()
per=$((NODES / REPLICAS))
for i in $(seq 0 $((REPLICAS - 1))); do
  api=$(((i + 1) % REPLICAS))
  "$BUILD_DIR/bench/edge_sim" --cloud "127.0.0.1:$((18600 + i))" --kubeconfig "$KUBECONFIG_FILE" \
    --api "https://127.0.0.1:$((18500 + api))" --prefix "r$i-" --nodes "$per" \
    --cloud-pid "${CC_PIDS[i]}" --idle-seconds 20 --rounds 10 "$@" >"$DIR/sim$i.log" 2>&1 &
  SIM_PIDS+=($!)
  PIDS+=($!)
done
# etcd's CPU while every simulator idles with heartbeats: from the moment all are connected.
until [ "$(grep -l "connected+synced" "$DIR"/sim*.log 2>/dev/null | wc -l)" -eq "$REPLICAS" ]; do
  for p in "${SIM_PIDS[@]}"; do kill -0 "$p" 2>/dev/null || { cat "$DIR"/sim*.log; exit 1; }; done
  sleep 0.5
done
sleep 13
e0=$(etcd_ticks)
sleep 20
e1=$(etcd_ticks)
for p in "${SIM_PIDS[@]}"; do wait "$p" || true; done
for i in $(seq 0 $((REPLICAS - 1))); do
  echo "== replica $i (nodes r$i-*, applied through replica $(((i + 1) % REPLICAS)))"
  cat "$DIR/sim$i.log"
done
awk -v t=$((e1 - e0)) -v hz="$HZ" -v m="$MEMBERS" \
  'BEGIN { printf "etcd (%d member(s)) CPU while all nodes heartbeat: %.1f%% of one core\n", m, t / hz / 20 * 100 }'

# Leader failover: kill the holder of kube-system/cloudcore.
holder=$(kc get lease -n kube-system cloudcore -o jsonpath='{.spec.holderIdentity}')
leader=-1
for i in $(seq 0 $((REPLICAS - 1))); do
  id=$(cat "$DIR/cloud$i/leader-election-id")
  [[ "$holder" == *"_$id" ]] && leader=$i
done
if [ "$leader" -lt 0 ]; then
  echo "no replica holds kube-system/cloudcore ($holder)" >&2
  exit 1
fi
other=$(((leader + 1) % REPLICAS))
kill -9 "${CC_PIDS[leader]}"
t0=$(date +%s%N)
while true; do
  now=$(kubectl --kubeconfig "$KUBECONFIG_FILE" --server "https://127.0.0.1:$((18500 + other))" \
    get lease -n kube-system cloudcore -o jsonpath='{.spec.holderIdentity}' 2>/dev/null || true)
  if [ -n "$now" ] && [ "$now" != "$holder" ]; then break; fi
  if [ $(( ($(date +%s%N) - t0) / 1000000000 )) -gt 60 ]; then
    echo "no new leader within 60 s" >&2
    exit 1
  fi
  sleep 0.1
done
echo "leader (replica $leader) killed: replica holding the Lease $(( ($(date +%s%N) - t0) / 1000000 )) ms later ($now)"
