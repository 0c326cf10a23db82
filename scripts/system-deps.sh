#!/usr/bin/env bash
# Make sure the system packages Huế GIS needs are present (Debian/Ubuntu).
# As root: installs what is missing with apt-get. Otherwise: prints the exact command.
set -euo pipefail

need=()
have_pg_bin() { ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; }
have_ext() { ls /usr/share/postgresql/*/extension/"$1".control >/dev/null 2>&1; }

have_pg_bin || need+=(postgresql-15)
have_ext postgis || need+=(postgresql-15-postgis-3)
have_ext postgis_raster || need+=(postgresql-15-postgis-3)
have_ext unaccent || need+=(postgresql-contrib)
ls /usr/share/postgresql/*/contrib/postgis-*/postgis.sql >/dev/null 2>&1 \
  || ls /usr/share/postgresql/*/extension/postgis--*.sql >/dev/null 2>&1 \
  || need+=(postgresql-15-postgis-3-scripts)
command -v psql >/dev/null 2>&1 || need+=(postgresql-client)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
python3 -c 'import sysconfig,os,sys; sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")) else 1)' \
  >/dev/null 2>&1 || need+=(python3-dev)
# Real clients and services the tests start themselves: GDAL's OAPIF/WMS drivers (ogr2ogr,
# ogrinfo, gdalinfo), Redis for the shared tile cache, Chromium for the web map, nginx for the
# deployment configuration, and fonts with Vietnamese glyphs for the PNG renderer.
command -v ogr2ogr >/dev/null 2>&1 || need+=(gdal-bin)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# MapLibre GL JS and the style validator (make web): Node.js 18 or later and npm. Debian 12's
# nodejs 18.20 and npm 9.2 work (npm ci and the validator checked under Node 18 and npm 9.2).
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
if command -v node >/dev/null 2>&1 \
    && [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 18 ]; then
  echo "Node.js $(node --version) is too old for web/ (MapLibre GL JS 5 needs 18 or later):" \
    "install Debian 12's nodejs and npm, or Node.js 18+ from nodejs.org" >&2
  exit 1
fi
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
# QGIS 3.22 for the desktop-client tests (OAPIF, WMS, vector tiles; tests/api/test_qgis.py):
# the Python bindings and the provider plugins only, without recommends (no desktop, no GUI).
lean=()
ls /usr/lib/python3/dist-packages/qgis/_core*.so >/dev/null 2>&1 || lean+=(python3-qgis)
[ -e /usr/lib/qgis/plugins/libprovider_wfs.so ] && [ -e /usr/lib/qgis/plugins/libprovider_wms.so ] \
  || lean+=(qgis-providers)
if [ "${1:-}" = "--bench" ]; then
  command -v wrk >/dev/null 2>&1 || need+=(wrk)
fi

if [ ${#need[@]} -eq 0 ] && [ ${#lean[@]} -eq 0 ]; then
  exit 0
fi
# de-duplicate
[ ${#need[@]} -eq 0 ] || mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
all=("${need[@]}" "${lean[@]}")

if [ "$(id -u)" -eq 0 ]; then
  echo "Installing system packages: ${all[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  [ ${#need[@]} -eq 0 ] || apt-get install -y -qq "${need[@]}" >/dev/null
  [ ${#lean[@]} -eq 0 ] || apt-get install -y -qq --no-install-recommends "${lean[@]}" >/dev/null
else
  echo "Missing system packages: ${all[*]}" >&2
  echo "Install them with:" >&2
  cmd="sudo apt-get update"
  [ ${#need[@]} -eq 0 ] || cmd+=" && sudo apt-get install -y ${need[*]}"
  [ ${#lean[@]} -eq 0 ] || cmd+=" && sudo apt-get install -y --no-install-recommends ${lean[*]}"
  echo "  $cmd" >&2
  exit 1
fi
