#!/usr/bin/env bash
# Create the project virtualenv and install geo-service with its dev extras (editable).
set -euo pipefail
venv=${1:-.venv}
py=${PYTHON:-python3}
if ! "$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
  echo "geo-service needs Python >= 3.11 (found $("$py" --version 2>&1))" >&2
  exit 2
fi
[ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip 2>/dev/null || true
"$venv/bin/python" -m pip install -q -e '.[dev]' 2>&1 | grep -v "is ignored: it is neither" || true
"$venv/bin/python" -c 'import geo_service, geopandas, h3, geoalchemy2' \
  || { echo "geo-service: Python install failed" >&2; exit 2; }
