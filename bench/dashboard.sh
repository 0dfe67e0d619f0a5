#!/usr/bin/env bash
# The dashboard's speed in headless Chromium (docs/performance.md, "Dashboard"): bundle size,
# first load of /ui/nodes on loopback, the time for a change made through the API to appear in an
# open page, and the Nodes page with N simulated nodes (Node objects created through the API,
# nothing runs them): first render, DOM rows, scrolling to the end, a status change's latency.
#   bench/dashboard.sh [--nodes 10000] [--runs 5] [--build build]
# Starts its own cloudcore (temp data dir, a static admin token); needs scripts/build.sh (which
# builds the dashboard too) and Debian's chromium.
set -euo pipefail
NODES=10000 RUNS=5 BUILD=build
while [[ $# -gt 0 ]]; do
  case "$1" in
    --nodes) NODES=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    *) echo "unknown flag $1" >&2; exit 2 ;;
  esac
done
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=$(mktemp -d /tmp/ep-dashbench.XXXXXX)
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
PORT=$(free_port)
TOKEN=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
echo "$TOKEN,admin,1,\"system:masters\"" >"$DIR/tokens.csv"
"$ROOT/$BUILD/cloudcore/cloudcore" --data-dir "$DIR/data" --api-listen "127.0.0.1:$PORT" \
  --tunnel-listen "127.0.0.1:$(free_port)" --router-listen "" --token-auth-file "$DIR/tokens.csv" \
  --log-level warn >"$DIR/cloudcore.log" 2>&1 &
CLOUD=$!
trap 'kill $CLOUD 2>/dev/null; wait $CLOUD 2>/dev/null; rm -rf "$DIR"' EXIT
for _ in $(seq 1 100); do curl -kfsS "https://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break; sleep 0.1; done

echo "bundle ($ROOT/$BUILD/cloudcore/dashboard):"
(cd "$ROOT/$BUILD/cloudcore/dashboard" && for f in index.html assets/*; do
  [[ $f == *.gz ]] && continue
  printf '  %-32s %8d bytes, %7d gzipped\n' "$f" "$(stat -c %s "$f")" "$(stat -c %s "$f.gz" 2>/dev/null || echo 0)"
done)
cd "$ROOT/dashboard"
EP_UI_URL="https://127.0.0.1:$PORT" EP_TOKEN="$TOKEN" EP_NODES=$NODES EP_RUNS=$RUNS \
  NODE_TLS_REJECT_UNAUTHORIZED=0 node --no-warnings e2e/bench.mjs
echo "cloudcore RSS after the run: $(awk '/VmRSS/ {print $2, $3}' /proc/$CLOUD/status)"
