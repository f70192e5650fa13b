#!/usr/bin/env bash
# Runs a command against a throwaway PostgreSQL 15 cluster:
#   scripts/with-postgres.sh cargo test
# Starts the cluster on a free port (as the `postgres` user, data under /tmp), exports
# QIP_TEST_DATABASE_URL for it, runs the command, and always stops and deletes the cluster.
# For fault tests it also exports QIP_TEST_PGDATA (the cluster's data directory) and QIP_TEST_PG_CTL (its
# pg_ctl), e.g. to restart the server with `pg_ctl -D "$QIP_TEST_PGDATA" restart -m immediate` (as `postgres`).
set -euo pipefail

if [ "$#" -eq 0 ]; then
  echo "usage: $0 COMMAND [ARGS...]" >&2
  exit 64
fi

find_pg_bin() {
  local name=$1
  if command -v "$name" >/dev/null 2>&1; then command -v "$name"; return; fi
  for dir in /usr/lib/postgresql/*/bin; do
    if [ -x "$dir/$name" ]; then echo "$dir/$name"; return; fi
  done
  echo "with-postgres: $name not found; install PostgreSQL 15 server binaries" >&2
  exit 69
}
INITDB=$(find_pg_bin initdb)
PG_CTL=$(find_pg_bin pg_ctl)

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

DATA_DIR=$(mktemp -d /tmp/qip-pg.XXXXXX)
PORT=$(free_port)
if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$DATA_DIR"; fi
chmod 700 "$DATA_DIR"

cleanup() {
  as_postgres "$PG_CTL" -D "$DATA_DIR" stop -m immediate >/dev/null 2>&1 || true
  rm -rf "$DATA_DIR"
}
trap cleanup EXIT INT TERM

as_postgres "$INITDB" -D "$DATA_DIR" -A trust -U postgres --no-sync >/dev/null
# Tests create a database each; allow plenty of connections.
as_postgres "$PG_CTL" -D "$DATA_DIR" -w -t 60 \
  -o "-p $PORT -k $DATA_DIR -c listen_addresses=127.0.0.1 -c max_connections=400 -c shared_buffers=128MB" \
  -l "$DATA_DIR/server.log" start >/dev/null

export QIP_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$PORT/postgres"
export QIP_TEST_PGDATA="$DATA_DIR"
export QIP_TEST_PG_CTL="$PG_CTL"
echo "with-postgres: PostgreSQL on 127.0.0.1:$PORT (data $DATA_DIR)" >&2
set +e
"$@"
status=$?
set -e
if [ "$status" -ne 0 ] && [ -f "$DATA_DIR/server.log" ]; then
  echo "with-postgres: command failed ($status); last server log lines:" >&2
  tail -n 20 "$DATA_DIR/server.log" >&2 || true
fi
exit "$status"
