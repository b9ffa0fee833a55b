#!/usr/bin/env bash
# Start (or reuse) a throwaway PostgreSQL + PostGIS cluster for the test suite, in /tmp.
# Prints the database URL on its last line. Usage: tools/pg_test_cluster.sh [start|stop]
set -euo pipefail
PGVER=${GRIDMAP_PG_VERSION:-15}
BIN=/usr/lib/postgresql/$PGVER/bin
ROOT=${GRIDMAP_PG_ROOT:-/tmp/gridmap-pg}
PORT=${GRIDMAP_PG_PORT:-54329}
DB=${GRIDMAP_PG_DB:-gridmap_test}

as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

if [ "${1:-start}" = stop ]; then
  [ -d "$ROOT/data" ] && as_pg "$BIN/pg_ctl" -D "$ROOT/data" -m fast stop || true
  exit 0
fi

if [ ! -x "$BIN/initdb" ]; then
  echo "PostgreSQL $PGVER server binaries not found in $BIN (apt-get install postgresql-$PGVER)" >&2
  exit 1
fi
if [ ! -f "/usr/share/postgresql/$PGVER/extension/postgis.control" ]; then
  echo "PostGIS is not installed: apt-get install postgresql-$PGVER-postgis-3" >&2
  exit 1
fi

mkdir -p "$ROOT/sock"
if [ ! -f "$ROOT/data/PG_VERSION" ]; then
  rm -rf "$ROOT/data"; mkdir -p "$ROOT/data"
  if [ "$(id -u)" = 0 ]; then chown -R postgres:postgres "$ROOT"; fi
  as_pg "$BIN/initdb" -D "$ROOT/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$ROOT/initdb.log" 2>&1 \
    || { cat "$ROOT/initdb.log" >&2; exit 1; }
fi
[ "$(id -u)" = 0 ] && chown postgres:postgres "$ROOT" "$ROOT/sock"
if ! as_pg "$BIN/pg_ctl" -D "$ROOT/data" status >/dev/null 2>&1; then
  as_pg "$BIN/pg_ctl" -D "$ROOT/data" -l "$ROOT/pg.log" -w -t 60 \
    -o "-p $PORT -k $ROOT/sock -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
    start >/dev/null || { tail -20 "$ROOT/pg.log" >&2; exit 1; }
fi
PSQL="psql -X -q -h 127.0.0.1 -p $PORT -U postgres"
if ! $PSQL -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$DB'" | grep -q 1; then
  $PSQL -d postgres -c "CREATE DATABASE $DB"
fi
$PSQL -d "$DB" -c "SET client_min_messages=warning" -c "CREATE EXTENSION IF NOT EXISTS postgis" >/dev/null
echo "postgresql+psycopg://postgres@127.0.0.1:$PORT/$DB"
