#!/usr/bin/env bash
# The example app (examples/digits-classifier) against the usual Python way of serving the same
# model (bench/classifier_flask.py: Flask + OpenCV DNN, under Flask's threaded server and under
# gunicorn with one worker per core), all on this machine, same ONNX file, same held-out set,
# same load: ApacheBench (ab, from apache2-utils) posting one PNG digit with keep-alive.
# Prints requests/s, latency p50/p99, failed requests, RSS after the run and the held-out accuracy
# each server reports. Results: docs/performance.md ("Classifier").
#   bench/classifier.sh [--digits run/digits] [--requests 4000] [--concurrency 4] [--build build]
# --digits is the output of examples/digits-classifier/train.py (v2.onnx, heldout.csv, samples/);
# scripts/up.sh leaves one in run/digits.
set -euo pipefail
DIGITS=run/digits REQUESTS=4000 CONC=4 BUILD=build
while [[ $# -gt 0 ]]; do
  case "$1" in
    --digits) DIGITS=$2; shift 2 ;;
    --requests) REQUESTS=$2; shift 2 ;;
    --concurrency) CONC=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    *) echo "unknown flag $1" >&2; exit 2 ;;
  esac
done
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
DIGITS=$(cd "$DIGITS" && pwd)
for f in "$DIGITS/v2.onnx" "$DIGITS/heldout.csv" "$DIGITS/samples/digit-7.png"; do
  [[ -f $f ]] || { echo "missing $f (run examples/digits-classifier/train.py --out $DIGITS)" >&2; exit 2; }
done
for tool in ab gunicorn; do
  command -v $tool >/dev/null || { echo "$tool not found (apt-get install apache2-utils gunicorn)" >&2; exit 2; }
done
APP="$ROOT/$BUILD/examples/digits-classifier"
[[ -x $APP ]] || { echo "$APP not built" >&2; exit 2; }
PY=/usr/bin/python3  # Debian's, with python3-flask and python3-opencv
DIR=$(mktemp -d /tmp/ep-clfbench.XXXXXX)
PIDS=()
cleanup() {
  kill "${PIDS[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$DIR"
}
trap cleanup EXIT
wait_http() {
  for _ in $(seq 1 300); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "no answer from $1" >&2
  return 1
}
# Resident memory of a process and all its descendants, MiB.
descendants() {
  local c
  echo "$1"
  for c in $(pgrep -P "$1" || true); do descendants "$c"; done
}
rss_mib() {
  local total=0 p kb
  for p in $(descendants "$1"); do
    kb=$(awk '/^VmRSS/ { print $2 }' "/proc/$p/status" 2>/dev/null || echo 0)
    total=$((total + ${kb:-0}))
  done
  awk -v k="$total" 'BEGIN { printf "%.1f", k / 1024 }'
}

mkdir -p "$DIR/model"
cp "$DIGITS/v2.onnx" "$DIR/model/v2.onnx"
echo '{"name":"digits","version":"v2","sha256":"","format":"onnx","file":"v2.onnx"}' >"$DIR/model/model.json"

read -r P1 P2 P3 < <($PY -c '
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])')
"$APP" --model-dir "$DIR/model" --heldout "$DIGITS/heldout.csv" --listen "127.0.0.1:$P1" ${EP_CLF_THREADS:+--threads "$EP_CLF_THREADS"} \
  >"$DIR/cpp.log" 2>&1 &
CPP=$!
PIDS+=("$CPP")
MODEL="$DIR/model/v2.onnx" HELDOUT="$DIGITS/heldout.csv" PORT=$P2 \
  $PY bench/classifier_flask.py >"$DIR/flask.log" 2>&1 &
FLASK=$!
PIDS+=("$FLASK")
MODEL="$DIR/model/v2.onnx" HELDOUT="$DIGITS/heldout.csv" \
  gunicorn -w "$(nproc)" -b "127.0.0.1:$P3" --chdir bench classifier_flask:app >"$DIR/gunicorn.log" 2>&1 &
GUNI=$!
PIDS+=("$GUNI")
wait_http "http://127.0.0.1:$P1/readyz"
wait_http "http://127.0.0.1:$P2/healthz"
wait_http "http://127.0.0.1:$P3/healthz"

# Same answers: every sample digit gets the same top label from all three.
for i in 0 1 2 3 4 5 6 7 8 9; do
  s="$DIGITS/samples/digit-$i.png"
  a=$(curl -fsS --data-binary @"$s" "http://127.0.0.1:$P1/v1/classify?k=1" | $PY -c 'import json,sys; print(json.load(sys.stdin)["predictions"][0]["label"])')
  b=$(curl -fsS --data-binary @"$s" "http://127.0.0.1:$P2/v1/classify?k=1" | $PY -c 'import json,sys; print(json.load(sys.stdin)["predictions"][0]["label"])')
  c=$(curl -fsS --data-binary @"$s" "http://127.0.0.1:$P3/v1/classify?k=1" | $PY -c 'import json,sys; print(json.load(sys.stdin)["predictions"][0]["label"])')
  [[ $a == "$b" && $b == "$c" ]] || { echo "digit-$i: C++ says $a, Flask $b, gunicorn $c" >&2; exit 1; }
done
echo "same top label from all three servers for digit-0..9.png"

run() {  # name port pid
  local name=$1 port=$2 pid=$3 out="$DIR/ab-$1.txt" csv="$DIR/ab-$1.csv" acc
  ab -q -k -c "$CONC" -n 200 -p "$DIGITS/samples/digit-7.png" -T image/png \
    "http://127.0.0.1:$port/v1/classify" >/dev/null 2>&1  # warm-up
  ab -q -k -c "$CONC" -n "$REQUESTS" -p "$DIGITS/samples/digit-7.png" -T image/png -e "$csv" \
    "http://127.0.0.1:$port/v1/classify" >"$out" 2>&1
  acc=$(curl -fsS "http://127.0.0.1:$port/v1/model" | $PY -c 'import json,sys; print(json.load(sys.stdin)["heldoutAccuracy"])')
  $PY - "$name" "$out" "$csv" "$(rss_mib "$pid")" "$acc" <<'PY'
import csv, re, sys
name, out, path, rss, acc = sys.argv[1:]
text = open(out).read()
rps = float(re.search(r"Requests per second:\s+([\d.]+)", text).group(1))
failed = int(re.search(r"Failed requests:\s+(\d+)", text).group(1))
non2xx = re.search(r"Non-2xx responses:\s+(\d+)", text)
rows = {int(float(r[0])): float(r[1]) for r in list(csv.reader(open(path)))[1:]}
print(f"| {name} | {rps:.0f} | {rows[50]:.1f} | {rows[99]:.1f} | "
      f"{failed + (int(non2xx.group(1)) if non2xx else 0)} | {rss} | {acc} |")
PY
}
echo "$REQUESTS requests, $CONC concurrent, keep-alive, $(nproc) cores, ab on the same machine"
echo "| server | req/s | p50 ms | p99 ms | failed | RSS MiB | held-out accuracy |"
echo "|---|---|---|---|---|---|---|"
run "digits-classifier (C++, ${EP_CLF_THREADS:-$(nproc)} threads)" "$P1" "$CPP"
run "Flask threaded server (python3-flask)" "$P2" "$FLASK"
run "Flask under gunicorn -w $(nproc)" "$P3" "$GUNI"
