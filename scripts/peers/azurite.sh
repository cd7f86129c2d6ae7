#!/usr/bin/env bash
# Azurite (the Azure Storage emulator from npm) for tests that talk to Azure Blob, e.g. the
# blob store's Azure backend.
#
#   scripts/peers/azurite.sh          install azurite into .peers/node-azurite (idempotent)
#   scripts/peers/azurite.sh start    install if needed, start the blob service on
#                                     127.0.0.1:${AZURITE_PORT:-10000} in the background and wait
#                                     until it answers
#   scripts/peers/azurite.sh stop     stop the server started here
#
# Then: export SWITCHYARD_TEST_AZURITE_URL=http://127.0.0.1:${AZURITE_PORT:-10000}/devstoreaccount1
#
# Azurite gets its own npm prefix so installing other npm peers (into .peers/node) can neither
# remove nor upgrade it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=retry.sh
source "$ROOT/scripts/peers/retry.sh"
PEERS="$ROOT/.peers"
PREFIX="$PEERS/node-azurite"
VERSION="3.35.0"
PORT="${AZURITE_PORT:-10000}"
PID_FILE="$PEERS/azurite.pid"
LOG_FILE="$PEERS/azurite.log"
URL="http://127.0.0.1:$PORT"
# The blob service alone: the full `azurite` entry also binds queue (10001) and table (10002).
ENTRY="$PREFIX/node_modules/azurite/dist/src/blob/main.js"

installed_version() {
  node -p "require('$PREFIX/node_modules/azurite/package.json').version" 2>/dev/null || true
}

install() {
  mkdir -p "$PREFIX"
  if [[ "$(installed_version)" != "$VERSION" ]]; then
    retry npm install --prefix "$PREFIX" --no-audit --no-fund --loglevel=error "azurite@$VERSION"
  fi
}

answers() {
  # Any HTTP status (an unauthenticated request gets 4xx) means the blob service is up.
  node -e '
    const req = require("http").get(process.argv[1], (res) => { res.resume(); process.exit(0); });
    req.on("error", () => process.exit(1));
    req.setTimeout(1000, () => { req.destroy(); process.exit(1); });
  ' "$URL/devstoreaccount1?comp=list" >/dev/null 2>&1
}

running() {
  [[ -f "$PID_FILE" ]] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null
}

start() {
  install
  if running && answers; then
    echo "azurite already running at $URL (pid $(cat "$PID_FILE"))"
    return 0
  fi
  if answers; then
    echo "something already answers at $URL; using it"
    return 0
  fi
  # --disableTelemetry always: the emulator must not phone home from a test machine.
  nohup node "$ENTRY" --silent --disableTelemetry --inMemoryPersistence --skipApiVersionCheck \
    --loose --blobHost 127.0.0.1 --blobPort "$PORT" >"$LOG_FILE" 2>&1 &
  echo $! >"$PID_FILE"
  for _ in $(seq 1 100); do
    if answers; then
      echo "azurite running at $URL (pid $(cat "$PID_FILE"))"
      return 0
    fi
    if ! running; then
      echo "azurite exited; see $LOG_FILE" >&2
      tail -n 20 "$LOG_FILE" >&2 || true
      return 1
    fi
    sleep 0.2
  done
  echo "azurite did not answer at $URL within 20 s; see $LOG_FILE" >&2
  return 1
}

stop() {
  if running; then
    kill "$(cat "$PID_FILE")"
    echo "azurite stopped"
  fi
  rm -f "$PID_FILE"
}

case "${1:-install}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 [install|start|stop]" >&2; exit 2 ;;
esac
