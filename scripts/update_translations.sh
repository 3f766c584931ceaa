#!/usr/bin/env bash
# Extract every marked string (Babel), merge it into the catalogues and compile them.
# Run after changing a marked string, translate what `msgfmt --statistics` or the test
# (tests/test_i18n.py) says is missing in geo_service/locale/zh_CN/LC_MESSAGES/*.po, and run
# again. Usage: scripts/update_translations.sh [VENV]
set -euo pipefail
VENV=${1:-.venv}
PYBABEL="$VENV/bin/pybabel"
L=geo_service/locale
common=(--project geo-service --copyright-holder "geo-service contributors" --sort-by-file
        --no-wrap --omit-header)
"$PYBABEL" extract -F "$L/babel.cfg" -k format_message -k N_ -k per_row "${common[@]}" -o "$L/messages.pot" geo_service
"$PYBABEL" extract -F "$L/babel-pages.cfg" --no-default-keywords -k t "${common[@]}" -o "$L/pages.pot" geo_service
for domain in messages pages; do
  if [ -f "$L/zh_CN/LC_MESSAGES/$domain.po" ]; then
    "$PYBABEL" update -D "$domain" -i "$L/$domain.pot" -d "$L" -l zh_CN --no-wrap --ignore-obsolete
  else
    "$PYBABEL" init -D "$domain" -i "$L/$domain.pot" -d "$L" -l zh_CN --no-wrap
  fi
  "$PYBABEL" compile -D "$domain" -d "$L" -l zh_CN --statistics
done
