#!/usr/bin/env bash
# moto (AWS service mocks from PyPI) for tests that talk to AWS APIs, e.g. the vault's KMS KEK.
#
#   scripts/peers/moto.sh          install moto into .peers/venv (idempotent)
#   scripts/peers/moto.sh start    install if needed, start moto_server on 127.0.0.1:${MOTO_PORT:-5055}
#                                  in the background and wait until it answers
#   scripts/peers/moto.sh stop     stop the server started here
#
# Then: export SWITCHYARD_TEST_MOTO_URL=http://127.0.0.1:${MOTO_PORT:-5055}
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=retry.sh
source "$ROOT/scripts/peers/retry.sh"
PEERS="$ROOT/.peers"
VENV="$PEERS/venv"
PORT="${MOTO_PORT:-5055}"
PID_FILE="$PEERS/moto.pid"
LOG_FILE="$PEERS/moto.log"
URL="http://127.0.0.1:$PORT"

install() {
  mkdir -p "$PEERS"
  if [[ ! -x "$VENV/bin/python" ]]; then
    python3 -m venv "$VENV"
  fi
  if ! "$VENV/bin/python" -c 'import moto.server' >/dev/null 2>&1; then
    retry "$VENV/bin/pip" install --quiet --disable-pip-version-check 'moto[server]>=5.1,<5.3'
  fi
}

answers() {
  # moto serves its dashboard index at /moto-api/; any HTTP answer means it is up.
  "$VENV/bin/python" - "$URL" <<'PY' >/dev/null 2>&1
import sys, urllib.request
urllib.request.urlopen(sys.argv[1] + "/moto-api/", timeout=1)
PY
}

running() {
  [[ -f "$PID_FILE" ]] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null
}

start() {
  install
  if running && answers; then
    echo "moto already running at $URL (pid $(cat "$PID_FILE"))"
    return 0
  fi
  if answers; then
    echo "something already answers at $URL; using it"
    return 0
  fi
  nohup "$VENV/bin/moto_server" -H 127.0.0.1 -p "$PORT" >"$LOG_FILE" 2>&1 &
  echo $! >"$PID_FILE"
  for _ in $(seq 1 100); do
    if answers; then
      echo "moto running at $URL (pid $(cat "$PID_FILE"))"
      return 0
    fi
    if ! running; then
      echo "moto_server exited; see $LOG_FILE" >&2
      tail -n 20 "$LOG_FILE" >&2 || true
      return 1
    fi
    sleep 0.2
  done
  echo "moto_server did not answer at $URL within 20 s; see $LOG_FILE" >&2
  return 1
}

stop() {
  if running; then
    kill "$(cat "$PID_FILE")"
    echo "moto stopped"
  fi
  rm -f "$PID_FILE"
}

case "${1:-install}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 [install|start|stop]" >&2; exit 2 ;;
esac
