#!/usr/bin/env bash
# Ingest throughput and acknowledgement latency of a real `switchyard serve` process, driven by
# wrk from another process on the same machine (Debian package `wrk`), beside the plain HTTP
# ceiling (examples/hello_hmac.rs) measured with the same tool and settings.
#
#   cargo build --release -p switchyard -p switchyard-server --example hello_hmac
#   scripts/bench/ingest-wrk.sh                 # SQLite, then PostgreSQL if BENCH_DATABASE_URL
#
# Knobs: BENCH_DURATION (10s), BENCH_CONNECTIONS (64), BENCH_THREADS (wrk threads, 2),
# BENCH_ROLES (server roles, api,worker,scheduler: the worker then processes what is stored
# while the load runs), BENCH_DATABASE_URL (a PostgreSQL server to create a database on,
# e.g. postgres://postgres@127.0.0.1:5432/test), BENCH_SCHEMES (github standard_webhooks).
set -euo pipefail
cd "$(dirname "$0")/../.."
binary=${BENCH_BIN:-target/release/switchyard}
hello=${BENCH_HELLO_BIN:-target/release/examples/hello_hmac}
duration=${BENCH_DURATION:-10s}
connections=${BENCH_CONNECTIONS:-64}
threads=${BENCH_THREADS:-2}
roles=${BENCH_ROLES:-api,worker,scheduler}
schemes=${BENCH_SCHEMES:-github standard_webhooks}
port=18741
secret=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
token=sya_bench-admin-token-0123456789abcdefghijkl
work=$(mktemp -d)
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }

# 1 KiB of JSON, the same bytes for every request.
python3 -c 'import json; print(json.dumps({"type": "order.created", "data": {"id": 42, "note": "x" * 960}}), end="")' > "$work/body.json"

peak_rss() { awk '/^VmHWM/ { printf "%.1f MiB", $2 / 1024 }' "/proc/$1/status"; }

run_wrk() { # $1 = url, $2 = requests file
  REQUESTS_FILE=$2 BODY_FILE=$work/body.json WRK_THREADS=$threads \
    wrk -t "$threads" -c "$connections" -d "$duration" --timeout 10s \
    -s scripts/bench/wrk/ingest.lua "$1" | grep -E '^(acknowledged|warning)'
}

wait_healthy() { # $1 = url
  for _ in $(seq 1 500); do curl -sf "$1" >/dev/null 2>&1 && return 0; sleep 0.02; done
  echo "server did not become healthy:" >&2; cat "$work/server.log" >&2; return 1
}

# The ceiling.
"$hello" "127.0.0.1:$port" >/dev/null & server_pid=$!
sleep 0.3
printf '%-36s ' "hello world + HMAC (ceiling)"
REQUESTS_FILE=/dev/null BODY_FILE=$work/body.json WRK_THREADS=$threads \
  wrk -t "$threads" -c "$connections" -d "$duration" -s scripts/bench/wrk/ingest.lua \
  "http://127.0.0.1:$port/hello" | grep -E '^acknowledged' | tr -d '\n'
echo "; peak RSS $(peak_rss "$server_pid")"
kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=

bench() { # $1 = label, $2 = database url (empty: SQLite in the data dir), $3 = scheme
  local data=$work/data-$RANDOM url=http://127.0.0.1:$port
  env SWITCHYARD_ADMIN_TOKEN="$token" SWITCHYARD_ROLES="$roles" RUST_LOG=warn \
    ${2:+SWITCHYARD_DATABASE_URL="$2"} \
    "$binary" serve --listen "127.0.0.1:$port" --data-dir "$data" >"$work/server.log" 2>&1 &
  server_pid=$!
  wait_healthy "$url/healthz"
  local tenant key source
  tenant=$(curl -sf -H "authorization: Bearer $token" -H 'content-type: application/json' \
    -d '{"name":"Bench"}' "$url/v1/tenants" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  key=$(curl -sf -H "authorization: Bearer $token" -H 'content-type: application/json' \
    -d '{"name":"bench","role":"admin"}' "$url/v1/tenants/$tenant/api-keys" | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
  source=$(curl -sf -H "authorization: Bearer $key" -H 'content-type: application/json' \
    -d "{\"name\":\"bench\",\"scheme\":\"$3\",\"secret\":\"$secret\"}" "$url/v1/sources" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  # Enough distinct deliveries for 40,000/s over the whole duration.
  local seconds=${duration%s}
  python3 scripts/bench/wrk/gen_requests.py "$3" "$secret" $((seconds * 40000)) "$work/body.json" "$work/requests.txt"
  printf '%-36s ' "$1 $3"
  run_wrk "$url/ingest/$source" "$work/requests.txt" | tr '\n' ' '
  echo "; peak RSS $(peak_rss "$server_pid")"
  kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=
}

for scheme in $schemes; do bench "SQLite" "" "$scheme"; done
if [ -n "${BENCH_DATABASE_URL:-}" ]; then
  for scheme in $schemes; do
    name=switchyard_bench_$RANDOM
    psql -q "$BENCH_DATABASE_URL" -c "CREATE DATABASE $name"
    bench "PostgreSQL" "${BENCH_DATABASE_URL%/*}/$name" "$scheme"
    psql -q "$BENCH_DATABASE_URL" -c "DROP DATABASE $name WITH (FORCE)"
  done
fi
