#!/usr/bin/env bash
# Stops what scripts/up.sh started: edgecore, cloudcore, then the private containerd (with the
# pods' containers) and the registry. Data stays in the run directory.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${EP_RUN_DIR:-$(pwd)/run}
for svc in mapper edgecore mosquitto cloudcore; do
  if [[ -f "$RUN/$svc.pid" ]]; then
    kill "$(cat "$RUN/$svc.pid")" 2>/dev/null || true
    rm -f "$RUN/$svc.pid"
    echo "down: $svc stopped"
  fi
done
if [[ -d "$RUN/cri" && $(id -u) -eq 0 ]]; then
  bash scripts/cri-env.sh down "$RUN/cri"
  echo "down: containerd and registry stopped"
fi
