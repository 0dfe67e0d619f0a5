#!/usr/bin/env bash
# Port-forward throughput on one node, as a user sees it: cloudcore + edgecore on a private
# containerd (scripts/cri-env.sh, its own ports and subnet), a pod serving SIZE MiB from busybox
# httpd, then curl of that file through `kubectl port-forward` and `edgectl port-forward`
# (API over TLS -> tunnel over mTLS -> edged -> containerd's port-forward into the pod), and the
# reference: curl of the same file straight from the pod's IP. Needs root. Results:
# docs/performance.md ("Port-forward").
#   bench/port_forward.sh [--size-mib 64] [--runs 3] [--build build]
set -euo pipefail
SIZE=64 RUNS=3 BUILD=build
while [[ $# -gt 0 ]]; do
  case "$1" in
    --size-mib) SIZE=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    *) echo "unknown flag $1" >&2; exit 2 ;;
  esac
done
[[ $(id -u) -eq 0 ]] || { echo "bench/port_forward.sh needs root (containerd)" >&2; exit 2; }
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN="$ROOT/$BUILD"
DIR=$(mktemp -d /tmp/ep-pfbench.XXXXXX)
# Apart from the tests' environment (their defaults), so both may run on one machine.
export EP_REGISTRY_PORT=5190 EP_SECURE_REGISTRY_PORT=5591 EP_CNI_SUBNET=10.244.93.0/24 \
  EP_CNI_BRIDGE=ep-pfbench0
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
API=$(free_port) TUN=$(free_port) LOCAL=$(free_port)
cleanup() {
  kill "${KPID:-}" "${FPID:-}" 2>/dev/null || true
  kill "${EPID:-}" 2>/dev/null || true
  wait "${EPID:-}" 2>/dev/null || true
  kill "${CPID:-}" 2>/dev/null || true
  wait 2>/dev/null || true
  bash "$ROOT/scripts/cri-env.sh" down "$DIR/cri" >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap cleanup EXIT
bash "$ROOT/scripts/cri-env.sh" up "$DIR/cri" >"$DIR/cri-env.log" 2>&1
# shellcheck disable=SC1091
source "$DIR/cri/env"
"$BIN/cloudcore/cloudcore" --data-dir "$DIR/cloud" --api-listen "127.0.0.1:$API" --router-listen "" \
  --tunnel-listen "127.0.0.1:$TUN" >"$DIR/cloudcore.log" 2>&1 &
CPID=$!
for _ in $(seq 100); do curl -ksf "https://127.0.0.1:$API/readyz" >/dev/null && break; sleep 0.1; done
export KUBECONFIG="$DIR/cloud/admin.kubeconfig"
EDGECTL="$BIN/edgectl/edgectl"
TOKEN=$($EDGECTL token create --ttl 10m --usages 1)
"$BIN/edgecore/edgecore" --node-name bench-node --cloud "127.0.0.1:$TUN" --data-dir "$DIR/edge" \
  --local-api-listen "127.0.0.1:$LOCAL" --runtime-endpoint "$EP_CRI_ENDPOINT" --token "$TOKEN" \
  --mqtt-server "" --dmi-socket "" >"$DIR/edgecore.log" 2>&1 &
EPID=$!
for _ in $(seq 100); do $EDGECTL get nodes bench-node --no-headers 2>/dev/null | grep -q ' Ready ' && break; sleep 0.2; done
cat <<EOF | $EDGECTL apply -f - >/dev/null
apiVersion: v1
kind: Pod
metadata:
  name: files
spec:
  nodeName: bench-node
  containers:
  - name: httpd
    image: $EP_REGISTRY/httpd:1
    command: ["sh", "-c", "head -c $((SIZE * 1024 * 1024)) /dev/urandom > /www/big && exec httpd -f -p 8080 -h /www"]
    ports:
    - containerPort: 8080
    readinessProbe:
      httpGet:
        path: /big
        port: 8080
      periodSeconds: 1
EOF
for _ in $(seq 300); do
  [[ $(kubectl get pod files -o jsonpath='{.status.containerStatuses[0].ready}' 2>/dev/null) == true ]] && break
  sleep 0.2
done
IP=$(kubectl get pod files -o jsonpath='{.status.podIP}')
forwarded_port() {  # the local port a port-forward printed
  for _ in $(seq 100); do
    p=$(grep -o 'Forwarding from 127.0.0.1:[0-9]*' "$1" | head -1 | cut -d: -f2)
    [[ -n "$p" ]] && { echo "$p"; return; }
    sleep 0.1
  done
  echo "no port in $1" >&2; exit 1
}
kubectl port-forward pod/files :8080 >"$DIR/kubectl-pf.log" 2>&1 &
KPID=$!
$EDGECTL port-forward pod/files :8080 >"$DIR/edgectl-pf.log" 2>&1 &
FPID=$!
KPORT=$(forwarded_port "$DIR/kubectl-pf.log")
FPORT=$(forwarded_port "$DIR/edgectl-pf.log")
fetch() {  # MiB/s of one GET of /big from $1
  curl -fsS -o /dev/null -w '%{size_download} %{time_total}\n' "http://$1/big" |
    awk -v want=$((SIZE * 1024 * 1024)) '{ if ($1 != want) { print "short: " $1 > "/dev/stderr"; exit 1 }
                                           printf "%.0f", $1 / 1048576 / $2 }'
}
for run in $(seq "$RUNS"); do
  echo "run $run: $SIZE MiB: direct from the pod IP $(fetch "$IP:8080") MiB/s;" \
    "kubectl port-forward $(fetch "127.0.0.1:$KPORT") MiB/s;" \
    "edgectl port-forward $(fetch "127.0.0.1:$FPORT") MiB/s"
done
ps -o rss=,comm= -p "$CPID" -p "$EPID" | awk '{ printf "%s RSS after: %.1f MiB\n", $2, $1 / 1024 }'
