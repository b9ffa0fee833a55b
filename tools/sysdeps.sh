#!/usr/bin/env bash
# Install the Debian/Ubuntu packages gridmap needs, if missing. Usage: tools/sysdeps.sh GROUP...
#   run:   SpatiaLite for the embedded database
#   test:  run + PostGIS for PostgreSQL 15 + Chromium and CJK fonts for the browser tests
# As root it installs with apt-get; otherwise it prints exactly what to install and fails.
set -euo pipefail
PGVER=${GRIDMAP_PG_VERSION:-15}
pkgs=()
for group in "$@"; do
  case "$group" in
    run)  pkgs+=(libsqlite3-mod-spatialite) ;;
    test) pkgs+=(libsqlite3-mod-spatialite "postgresql-$PGVER" "postgresql-$PGVER-postgis-3") ;;
    browser) pkgs+=(chromium fonts-noto-cjk) ;;
    *) echo "unknown group $group" >&2; exit 2 ;;
  esac
done
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null; then
  echo "gridmap needs these packages (Debian names): ${missing[*]}" >&2; exit 1
fi
if [ "$(id -u)" != 0 ]; then
  echo "gridmap needs system packages that are missing. Run as root:" >&2
  echo "  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi
echo "installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/gridmap-apt.log 2>&1 \
  || { tail -30 /tmp/gridmap-apt.log >&2; exit 1; }
