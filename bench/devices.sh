#!/usr/bin/env bash
# Device reports end to end on one node: cloudcore + mosquitto + edgecore (MQTT and DMI), then
# bench/device_report_bench over MQTT and over DMI: reports/s the edge accepts and the cloud
# applies with 1,000 devices, report -> Device status latency at a moderate rate, and edgecore's
# RSS with the devices cached and idle. Results: docs/performance.md ("Devices").
#   bench/devices.sh [--devices 1000] [--rate 2000] [--seconds 10] [--latency-rate 200] [--build build]
set -euo pipefail
DEVICES=1000 RATE=2000 SECONDS_=10 LAT_RATE=200 BUILD=build
while [[ $# -gt 0 ]]; do
  case "$1" in
    --devices) DEVICES=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    --seconds) SECONDS_=$2; shift 2 ;;
    --latency-rate) LAT_RATE=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    *) echo "unknown flag $1" >&2; exit 2 ;;
  esac
done
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN="$ROOT/$BUILD"
DIR=$(mktemp -d /tmp/ep-devbench.XXXXXX)
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
API=$(free_port) TUN=$(free_port) LOCAL=$(free_port) MQTT=$(free_port)
cleanup() {
  kill "${EPID:-}" "${CPID:-}" "${MPID:-}" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$DIR"
}
trap cleanup EXIT
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 100000\n' \
  "$MQTT" >"$DIR/mosquitto.conf"
mosquitto -c "$DIR/mosquitto.conf" >"$DIR/mosquitto.log" 2>&1 &
MPID=$!
"$BIN/cloudcore/cloudcore" --data-dir "$DIR/cloud" --api-listen "127.0.0.1:$API" --router-listen "" \
  --tunnel-listen "127.0.0.1:$TUN" >"$DIR/cloudcore.log" 2>&1 &
CPID=$!
for _ in $(seq 100); do curl -ksf "https://127.0.0.1:$API/readyz" >/dev/null && break; sleep 0.1; done
EDGECTL="$BIN/edgectl/edgectl --kubeconfig $DIR/cloud/admin.kubeconfig"
TOKEN=$($EDGECTL token create --ttl 10m --usages 1)
"$BIN/edgecore/edgecore" --node-name bench-node --cloud "127.0.0.1:$TUN" --data-dir "$DIR/edge" \
  --local-api-listen "127.0.0.1:$LOCAL" --runtime-endpoint "" --token "$TOKEN" \
  --mqtt-server "tcp://127.0.0.1:$MQTT" --dmi-socket "$DIR/dmi.sock" >"$DIR/edgecore.log" 2>&1 &
EPID=$!
for _ in $(seq 100); do $EDGECTL get nodes bench-node --no-headers 2>/dev/null | grep -q ' Ready ' && break; sleep 0.2; done
B="$BIN/bench/device_report_bench --kubeconfig $DIR/cloud/admin.kubeconfig --node bench-node \
  --devices $DEVICES --edge-api http://127.0.0.1:$LOCAL --mqtt tcp://127.0.0.1:$MQTT \
  --dmi $DIR/dmi.sock --edge-pid $EPID"
echo "== idle with $DEVICES devices cached"
sleep 5
echo "edgecore RSS $(awk '/VmRSS/ {printf "%.1f MiB", $2/1024}' /proc/$EPID/status)"
echo "== throughput, MQTT ($RATE/s offered for ${SECONDS_}s)"
$B --mode mqtt --rate "$RATE" --seconds "$SECONDS_" --settle 12 || true
echo "== throughput, DMI ($RATE/s offered for ${SECONDS_}s)"
$B --mode dmi --rate "$RATE" --seconds "$SECONDS_" || true
echo "== latency, MQTT ($LAT_RATE/s)"
$B --mode mqtt --rate "$LAT_RATE" --seconds "$SECONDS_" || true
echo "== latency, DMI ($LAT_RATE/s)"
$B --mode dmi --rate "$LAT_RATE" --seconds "$SECONDS_" || true
sleep 5
echo "== after: edgecore RSS $(awk '/VmRSS/ {printf "%.1f MiB", $2/1024}' /proc/$EPID/status), cloudcore RSS $(awk '/VmRSS/ {printf "%.1f MiB", $2/1024}' /proc/$CPID/status)"
