#!/usr/bin/env bash
# Model delivery on one node: cloudcore + edgecore (no container runtime; the file is fetched
# for a pod bound to the node), then: edgectl model push throughput, tunnel delivery throughput
# (pod created -> file complete and verified on the node) for SIZE MiB, and the reference: a
# plain TCP copy of the same bytes over the same loopback (python3 sockets, no TLS, no disk).
# Results: docs/performance.md ("Models").
#   bench/models.sh [--size-mib 64] [--runs 3] [--build build]
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
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN="$ROOT/$BUILD"
DIR=$(mktemp -d /tmp/ep-modelbench.XXXXXX)
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
API=$(free_port) TUN=$(free_port) LOCAL=$(free_port)
cleanup() {
  kill "${EPID:-}" "${CPID:-}" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$DIR"
}
trap cleanup EXIT
"$BIN/cloudcore/cloudcore" --data-dir "$DIR/cloud" --api-listen "127.0.0.1:$API" --router-listen "" \
  --tunnel-listen "127.0.0.1:$TUN" >"$DIR/cloudcore.log" 2>&1 &
CPID=$!
for _ in $(seq 100); do curl -ksf "https://127.0.0.1:$API/readyz" >/dev/null && break; sleep 0.1; done
EDGECTL="$BIN/edgectl/edgectl --kubeconfig $DIR/cloud/admin.kubeconfig"
TOKEN=$($EDGECTL token create --ttl 10m --usages 1)
"$BIN/edgecore/edgecore" --node-name bench-node --cloud "127.0.0.1:$TUN" --data-dir "$DIR/edge" \
  --local-api-listen "127.0.0.1:$LOCAL" --runtime-endpoint "" --token "$TOKEN" \
  --mqtt-server "" --dmi-socket "" >"$DIR/edgecore.log" 2>&1 &
EPID=$!
for _ in $(seq 100); do $EDGECTL get nodes bench-node --no-headers 2>/dev/null | grep -q ' Ready ' && break; sleep 0.2; done
now() { date +%s.%N; }
for run in $(seq "$RUNS"); do
  head -c $((SIZE * 1024 * 1024)) /dev/urandom >"$DIR/model-$run.onnx"
  t0=$(now)
  out=$($EDGECTL model push "bench-$run" "$DIR/model-$run.onnx" --version v1)
  t1=$(now)
  digest=$(grep -o 'sha256:[0-9a-f]*' <<<"$out")
  printf 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: app-%s\nspec:\n  nodeName: bench-node\n  containers:\n  - name: c\n    image: busybox\n    volumeMounts:\n    - name: m\n      mountPath: /m\n  volumes:\n  - name: m\n    csi:\n      driver: models.edgeplane.io\n      volumeAttributes:\n        model: bench-%s\n' \
    "$run" "$run" | $EDGECTL apply -f - >/dev/null
  t2=$(now)
  until [[ -f "$DIR/edge/models/blobs/${digest#sha256:}" ]]; do sleep 0.01; done
  t3=$(now)
  python3 - "$SIZE" "$t0" "$t1" "$t2" "$t3" <<'PY'
import sys
size, t0, t1, t2, t3 = int(sys.argv[1]), *map(float, sys.argv[2:])
print(f"run: push {size} MiB in {t1-t0:.2f} s ({size/(t1-t0):.0f} MiB/s); "
      f"pod created -> file verified on the node in {t3-t2:.2f} s ({size/(t3-t2):.0f} MiB/s)")
PY
done
echo "== reference: plain TCP copy of $SIZE MiB over loopback (python3 sockets)"
python3 - "$SIZE" <<'PY'
import socket, sys, threading, time
size = int(sys.argv[1]) * 1024 * 1024
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
port = srv.getsockname()[1]
def sink():
    c, _ = srv.accept(); got = 0
    while got < size:
        b = c.recv(1 << 20)
        if not b: break
        got += len(b)
    c.close()
for _ in range(3):
    t = threading.Thread(target=sink); t.start()
    cl = socket.create_connection(("127.0.0.1", port)); buf = b"x" * (1 << 20)
    t0 = time.time()
    for _ in range(size // len(buf)): cl.sendall(buf)
    cl.close(); t.join(); dt = time.time() - t0
    print(f"tcp copy: {size>>20} MiB in {dt:.2f} s ({(size>>20)/dt:.0f} MiB/s)")
PY
echo "edgecore RSS $(awk '/VmRSS/ {printf "%.1f MiB", $2/1024}' /proc/$EPID/status), cloudcore RSS $(awk '/VmRSS/ {printf "%.1f MiB", $2/1024}' /proc/$CPID/status)"
