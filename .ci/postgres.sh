#!/usr/bin/env bash
# Start a throwaway PostgreSQL on 127.0.0.1 for the tests (installs Debian's package if needed).
# Prints the SQLAlchemy URL; `.ci/postgres.sh stop DIR` stops it.
set -euo pipefail
if [ "${1:-}" = "stop" ]; then
  bin=$(ls -d /usr/lib/postgresql/*/bin | tail -n 1)
  su postgres -c "$bin/pg_ctl -D $2 stop -m fast" >/dev/null 2>&1 || true
  exit 0
fi
if ! ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1; then
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
bin=$(ls -d /usr/lib/postgresql/*/bin | tail -n 1)
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
data=$(mktemp -d /tmp/faceledger-pg.XXXXXX)
chown postgres "$data"
su postgres -c "$bin/initdb -D $data -A trust -U postgres" >/dev/null
su postgres -c "$bin/pg_ctl -D $data -l $data/log -w start -o \"-p $PORT -k $data -c listen_addresses=127.0.0.1\"" >/dev/null
echo "$data postgresql+psycopg://postgres@127.0.0.1:$PORT/postgres"
