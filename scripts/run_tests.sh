#!/usr/bin/env bash
# Run the whole suite against a real PostGIS (the embedded cluster unless GEO_DATABASE_URL is set).
set -uo pipefail
venv=${1:-.venv}
"$venv/bin/python" -m pytest -q "${@:2}"
rc=$?
if [ $rc -eq 5 ]; then
  echo "no tests were collected" >&2
  exit 1
fi
exit $rc
