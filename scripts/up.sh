#!/usr/bin/env bash
# One command brings the system up on this machine: installs dependencies, builds, starts
# cloudcore on its embedded SQLite store, applies the sample app and lists it with edgectl.
#   EP_RUN_DIR (default ./run)  EP_API_PORT (default 6443)
# Stop it with scripts/down.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
RUN=${EP_RUN_DIR:-$ROOT/run}
PORT=${EP_API_PORT:-6443}
bash scripts/install-deps.sh
bash scripts/build.sh
mkdir -p "$RUN"
SERVER="http://127.0.0.1:$PORT"

if [[ -f "$RUN/cloudcore.pid" ]] && kill -0 "$(cat "$RUN/cloudcore.pid")" 2>/dev/null; then
  echo "up: cloudcore already running (pid $(cat "$RUN/cloudcore.pid"))"
else
  nohup "$ROOT/build/cloudcore/cloudcore" --data-dir "$RUN/cloudcore" \
    --api-listen "127.0.0.1:$PORT" >"$RUN/cloudcore.log" 2>&1 &
  echo $! >"$RUN/cloudcore.pid"
  for _ in $(seq 1 100); do
    curl -fsS "$SERVER/readyz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  curl -fsS "$SERVER/readyz" >/dev/null || { echo "up: cloudcore did not start:"; tail -20 "$RUN/cloudcore.log"; exit 1; }
  echo "up: cloudcore ready at $SERVER (pid $(cat "$RUN/cloudcore.pid"), log $RUN/cloudcore.log)"
fi

EDGECTL="$ROOT/build/edgectl/edgectl --server $SERVER"
$EDGECTL apply -f deploy/samples/
echo
$EDGECTL get deployments,configmaps -o wide
echo
$EDGECTL get devicemodels,devices
echo
echo "up: try:  export EDGECTL_SERVER=$SERVER; build/edgectl/edgectl get all"
echo "    or:   kubectl --server=$SERVER get deploy"
