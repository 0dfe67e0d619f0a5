#!/usr/bin/env bash
# Builds the dashboard (dashboard/: Preact + htm, bundled by Vite; docs/dashboard.md) into
# BUILD_DIR/cloudcore/dashboard, next to the cloudcore binary, where cloudcore finds it and serves
# it at /ui/:
#   scripts/build-dashboard.sh            -> build/cloudcore/dashboard
#   BUILD_DIR=build-x scripts/build-dashboard.sh, or DASHBOARD_OUT=DIR for any directory
# Installs the locked npm packages (npm ci, package-lock.json) when they changed, writes a .gz of
# each text file (served to browsers that accept gzip) and SHA256SUMS, which cloudcore checks
# every file against when it loads them. Needs Node.js >= 20.19 and npm (the machine's).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=${DASHBOARD_OUT:-${BUILD_DIR:-build}/cloudcore/dashboard}
[[ $OUT == /* ]] || OUT="$ROOT/$OUT"

command -v node >/dev/null && command -v npm >/dev/null ||
  { echo "build-dashboard: node and npm are needed (Node.js >= 20.19)" >&2; exit 1; }
node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a==20&&b>=19)?0:1)' ||
  { echo "build-dashboard: Node.js $(node --version) is too old: Vite 8 needs >= 20.19" >&2; exit 1; }

cd dashboard
# npm ci only when the lock file changed since the last install (it wipes node_modules).
stamp=node_modules/.edgeplane-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi
DASHBOARD_OUT="$OUT" npx --no-install vite build --logLevel warn

cd "$OUT"
find . -type f \( -name '*.js' -o -name '*.css' -o -name '*.html' -o -name '*.svg' \) \
  -exec gzip -9 -k -n -f {} +
sums=$(find . -type f ! -name SHA256SUMS -printf '%P\n' | LC_ALL=C sort | xargs sha256sum)
printf '%s\n' "$sums" > SHA256SUMS
gz=$(find assets -name '*.gz' -printf '%s\n' | awk '{s+=$1} END {print s+0}')
echo "build-dashboard: $OUT ($(find . -type f ! -name '*.gz' ! -name SHA256SUMS | wc -l) files, assets ${gz} bytes gzipped)"
