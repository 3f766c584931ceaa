#!/usr/bin/env bash
# Install the browser libraries the test pages load from disk (tests/web: MapLibre GL JS for
# tests/layers/test_maplibre.py), exactly as pinned in tests/web/package-lock.json.
# `npm ci` runs only when tests/web/node_modules is missing or the lock file changed since.
set -euo pipefail

web="$(cd "$(dirname "$0")/.." && pwd)/tests/web"
stamp="$web/node_modules/.geo-service-lock.sha256"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "geo-service: node and npm are needed for the MapLibre browser test (tests/web);" \
    "install them (Debian: apt-get install nodejs npm, or run scripts/install_system_deps.sh)" >&2
  exit 2
fi

lock_sum="$(sha256sum "$web/package-lock.json" | cut -d' ' -f1)"
if [ -d "$web/node_modules" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$lock_sum" ]; then
  exit 0
fi

echo "geo-service: npm ci in tests/web (MapLibre GL JS for the browser tests)"
# --ignore-scripts: the page only needs the published dist files, no install scripts run
(cd "$web" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
echo "$lock_sum" >"$stamp"
