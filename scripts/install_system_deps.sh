#!/usr/bin/env bash
# Install the Debian packages geo-service needs when they are missing:
# PostgreSQL 15 + PostGIS 3 (the embedded cluster), Chromium (map checks), GDAL (OGC client checks)
# and Node.js + npm (MapLibre GL JS for the browser test page, scripts/install_web_deps.sh),
# a CJK font (Chinese pages in headless Chromium and the PDF reports) and poppler-utils.
set -euo pipefail

need=()
pg_bin=/usr/lib/postgresql/15/bin
[ -x "$pg_bin/initdb" ] && [ -x "$pg_bin/pg_ctl" ] || need+=(postgresql-15)
[ -f /usr/share/postgresql/15/extension/postgis.control ] || need+=(postgresql-15-postgis-3)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v ogrinfo >/dev/null 2>&1 || need+=(gdal-bin)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
[ -f /usr/lib/python3/dist-packages/qgis/core/__init__.py ] || need+=(python3-qgis)
# a font holding Chinese: TrueType for the PDF reports (ReportLab embeds TrueType only), and
# fontconfig finds it for Chromium's Chinese pages; and
# pdftoppm, with which the tests look at the pages
[ -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || need+=(fonts-wqy-microhei)
command -v pdftoppm >/dev/null 2>&1 || need+=(poppler-utils)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi

echo "geo-service: installing Debian packages: ${need[*]}"
if [ "$(id -u)" -eq 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1; then
  SUDO="sudo"
else
  echo "geo-service: missing packages (${need[*]}); run as root: apt-get install ${need[*]}" >&2
  exit 2
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
