#!/bin/sh
# Initialises the cluster on first start (owner role and database from
# POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB; password auth over the
# network), then runs the server in the foreground so `docker stop` shuts it
# down cleanly.
set -eu
bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
: "${POSTGRES_USER:=airlock}" "${POSTGRES_DB:=airlock}"
: "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pwfile="$(mktemp)"
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  "$bin/initdb" -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  echo "host all all 0.0.0.0/0 scram-sha-256" >>"$PGDATA/pg_hba.conf"
  "$bin/pg_ctl" -D "$PGDATA" -o "-c listen_addresses='' -c unix_socket_directories=/tmp" -w start >/dev/null
  "$bin/psql" -h /tmp -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d postgres -c "CREATE DATABASE \"$POSTGRES_DB\"" >/dev/null 2>&1 || true
  "$bin/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
fi
exec "$bin/postgres" -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories=/tmp
