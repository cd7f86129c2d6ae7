#!/usr/bin/env bash
# Makes sure PostgreSQL answers on 127.0.0.1:5432 and has the `test` database. Starts the
# local cluster if it is installed but stopped; fails loudly if it cannot be reached.
set -euo pipefail

PGHOST=127.0.0.1
PGPORT=5432
PGUSER=${PGUSER:-postgres}
export PGHOST PGPORT PGUSER

answers() { psql -d postgres -tAc 'SELECT 1' >/dev/null 2>&1; }

if ! answers; then
  echo "PostgreSQL is not answering on $PGHOST:$PGPORT; trying to start the local cluster" >&2
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    for version in $(ls /etc/postgresql); do
      pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    done
  fi
  for _ in $(seq 1 30); do
    answers && break
    sleep 1
  done
fi

if ! answers; then
  echo "FATAL: PostgreSQL is required at $PGHOST:$PGPORT (user $PGUSER) and could not be reached" >&2
  exit 1
fi

if [ "$(psql -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'")" != "1" ]; then
  psql -d postgres -c 'CREATE DATABASE test' >/dev/null
fi
echo "PostgreSQL ready at $PGHOST:$PGPORT"
