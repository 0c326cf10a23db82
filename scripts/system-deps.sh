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
command -v npm >/dev/null 2>&1 || need+=(npm)  # MapLibre GL JS for the web map (make web)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
if [ "${1:-}" = "--bench" ]; then
  command -v wrk >/dev/null 2>&1 || need+=(wrk)
fi

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
# de-duplicate
mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)

if [ "$(id -u)" -eq 0 ]; then
  echo "Installing system packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
else
  echo "Missing system packages: ${need[*]}" >&2
  echo "Install them with:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y ${need[*]}" >&2
  exit 1
fi
