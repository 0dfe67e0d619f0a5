#!/usr/bin/env bash
# Measures edgecore's memory idle with N pods (and one ConfigMap each) cached, connected to a
# cloudcore, after a settle time. Prints RSS/PSS/private dirty, thread count and RSS per mapping.
#   bench/edgecore_memory.sh [--pods 10] [--settle 30] [--runtime-endpoint ""] [--build build]
# With --runtime-endpoint unix:///path/containerd.sock the pods also run (image busybox from the
# harness registry, scripts/cri-env.sh); by default they are only cached. EDGE_CONFIG=FILE passes
# an edgecore config file (e.g. "statsInterval: 0s" to measure without resource metrics).
# --arch arm64|armhf runs edgecore from build-ARCH (scripts/build.sh --arch) under qemu-user
# against this machine's cloudcore, and prints the guest's own RSS (bench/guest_rss.py).
set -euo pipefail
PODS=10 SETTLE=30 RUNTIME="" BUILD=build IMAGE=127.0.0.1:5000/busybox:1.36 ARCH=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --arch) ARCH=$2; shift 2 ;;
    --pods) PODS=$2; shift 2 ;;
    --settle) SETTLE=$2; shift 2 ;;
    --runtime-endpoint) RUNTIME=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    --image) IMAGE=$2; shift 2 ;;
    *) echo "unknown flag $1" >&2; exit 2 ;;
  esac
done
case $ARCH in
  "" | arm64 | armhf) ;;
  *) echo "--arch: arm64 or armhf" >&2; exit 2 ;;
esac
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN="$ROOT/$BUILD"
DIR=$(mktemp -d /tmp/ep-edgemem.XXXXXX)
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
API=$(free_port) TUN=$(free_port) LOCAL=$(free_port)
cleanup() {
  # Pods that ran are deleted through the API first, so no containers outlive the run.
  if [[ -n "$RUNTIME" && -n "${EDGECTL:-}" ]]; then
    $EDGECTL delete pods -l app=mem >/dev/null 2>&1 || true
    for _ in $(seq 150); do
      [[ -z "$($EDGECTL get pods -l app=mem --no-headers 2>/dev/null)" ]] && break
      sleep 0.2
    done
  fi
  kill ${EPID:-} ${CPID:-} 2>/dev/null || true
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
EDGECORE=("$BIN/edgecore/edgecore")
GUEST_BASE=0x100000000000  # far from where the emulator maps itself (0x55..., 0x7f...)
case $ARCH in
  "") ;;
  arm64) GUEST_SIZE=0x400000000
         EDGECORE=(qemu-aarch64-static -L "$(bash "$ROOT/scripts/cross-sysroot.sh" arm64)" -B $GUEST_BASE -R $GUEST_SIZE
                   "$ROOT/build-arm64/edgecore/edgecore") ;;
  # A 32-bit guest gets its whole 4 GiB reserved anyway (and qemu 7.2 asserts on -R there).
  armhf) GUEST_SIZE=0x100000000
         EDGECORE=(qemu-arm-static -L "$(bash "$ROOT/scripts/cross-sysroot.sh" armhf)" -B $GUEST_BASE
                   "$ROOT/build-armhf/edgecore/edgecore") ;;
esac
"${EDGECORE[@]}" --node-name mem-node --cloud "127.0.0.1:$TUN" --data-dir "$DIR/edge" \
  --local-api-listen "127.0.0.1:$LOCAL" --runtime-endpoint "$RUNTIME" --token "$TOKEN" \
  --mqtt-server "${MQTT_SERVER:-}" --dmi-socket "${DMI_SOCKET:-}" \
  ${EDGE_CONFIG:+--config "$EDGE_CONFIG"} >"$DIR/edgecore.log" 2>&1 &
EPID=$!
for _ in $(seq 100); do $EDGECTL get nodes mem-node --no-headers 2>/dev/null | grep -q ' Ready ' && break; sleep 0.2; done
{
  for i in $(seq "$PODS"); do
    cat <<YAML
apiVersion: v1
kind: ConfigMap
metadata: {name: cm-$i, namespace: default}
data: {index.html: "page $i"}
---
apiVersion: v1
kind: Pod
metadata: {name: pod-$i, namespace: default, labels: {app: mem}}
spec:
  nodeName: mem-node
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: $IMAGE
    command: ["sleep", "100000"]
    volumeMounts: [{name: www, mountPath: /www}]
  volumes: [{name: www, configMap: {name: cm-$i}}]
---
YAML
  done
} >"$DIR/manifest.yaml"
$EDGECTL apply -f "$DIR/manifest.yaml" >/dev/null
for _ in $(seq 300); do
  n=$(curl -fsS "http://127.0.0.1:$LOCAL/api/v1/pods" | python3 -c 'import json,sys;print(len(json.load(sys.stdin)["items"]))')
  [[ "$n" -ge "$PODS" ]] && break
  sleep 0.2
done
echo "cached pods: $n; settling ${SETTLE}s"
sleep "$SETTLE"
echo "pod phases (cloud): $($EDGECTL get pods --no-headers 2>/dev/null | awk '{print $3}' | sort | uniq -c | tr '\n' ' ')"
if [[ -n $ARCH ]]; then
  echo "edgecore for $ARCH under ${EDGECORE[0]}: $(file -b "${EDGECORE[-1]}" | cut -d, -f1-2)"
  python3 "$ROOT/bench/guest_rss.py" "$EPID" "$GUEST_BASE" "$GUEST_SIZE"
  echo "threads: $(ls "/proc/$EPID/task" | wc -l) (qemu-user's included)"
  exit 0
fi
grep -E '^(Rss|Pss|Private_Dirty|Private_Clean|Shared_Clean|Anonymous):' "/proc/$EPID/smaps_rollup"
echo "threads: $(ls /proc/$EPID/task | wc -l)"
echo "VmRSS: $(grep VmRSS /proc/$EPID/status | awk '{print $2, $3}')"
echo "RSS per mapping (KiB):"
awk '/^[0-9a-f]+-[0-9a-f]+ /{name=($6==""?"[anon]":$6)} /^Rss:/{rss[name]+=$2} END{for(n in rss) if (rss[n]>0) printf "%8d %s\n", rss[n], n}' \
  "/proc/$EPID/smaps" | sort -rn | head -20
