#!/usr/bin/env bash
# Makes sure Redis answers PING on 127.0.0.1:6379. Starts a throwaway redis-server (nothing
# kept on disk) if one is installed but none runs; fails loudly if it cannot be reached.
set -euo pipefail

HOST=127.0.0.1
PORT=${REDIS_PORT:-6379}

answers() {
  exec 3<>"/dev/tcp/$HOST/$PORT" 2>/dev/null || return 1
  printf 'PING\r\n' >&3
  local reply
  read -r -t 2 reply <&3 || true
  exec 3>&-
  [[ "$reply" == +PONG* ]]
}

if ! answers; then
  echo "Redis is not answering on $HOST:$PORT; trying to start redis-server" >&2
  if command -v redis-server >/dev/null 2>&1; then
    redis-server --bind "$HOST" --port "$PORT" --save '' --appendonly no --daemonize yes >/dev/null
  fi
  for _ in $(seq 1 20); do
    answers && break
    sleep 0.5
  done
fi

if ! answers; then
  echo "FATAL: Redis is required at $HOST:$PORT and could not be reached" >&2
  exit 1
fi
echo "Redis ready at $HOST:$PORT"
