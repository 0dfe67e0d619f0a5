#!/usr/bin/env bash
# Times what the edge service proxy runs per write: iptables-restore of the rules for N Services
# (2 local endpoints each), in a throwaway network namespace so the host's tables are untouched.
# Needs root. Usage: bench/service_proxy.sh [BUILD_DIR] (default build). docs/performance.md.
set -euo pipefail
BUILD=${1:-build}
for n in 10 100 1000; do
  rules=$(mktemp)
  "$BUILD/bench/service_proxy_bench" --print "$n" > "$rules"
  # First write (chains created), then a rewrite of the same rules (the periodic resync).
  out=$(unshare -n bash -c "
    s=\$(date +%s%N); iptables-restore -w 5 --noflush < '$rules'; m=\$(date +%s%N)
    iptables-restore -w 5 --noflush < '$rules'; e=\$(date +%s%N)
    echo \$(( (m - s) / 1000000 )) \$(( (e - m) / 1000000 )) \$(iptables-save -t nat | grep -c '^-A EDGEPLANE')")
  read -r first again lines <<< "$out"
  echo "services=$n rules=$lines bytes=$(wc -c < "$rules") first_write_ms=$first rewrite_ms=$again"
  rm -f "$rules"
done
