#!/usr/bin/env bash
# Stops what scripts/up.sh started. Data stays in the run directory.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${EP_RUN_DIR:-$(pwd)/run}
if [[ -f "$RUN/cloudcore.pid" ]]; then
  kill "$(cat "$RUN/cloudcore.pid")" 2>/dev/null || true
  rm -f "$RUN/cloudcore.pid"
  echo "down: cloudcore stopped"
fi
