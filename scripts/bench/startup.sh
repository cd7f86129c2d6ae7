#!/usr/bin/env bash
# Measures how long `switchyard serve` takes from exec to a 200 on /healthz, on a fresh data
# directory (first start: creates the SQLite file, migrates, generates the admin token) and on
# an existing one (restart). Prints each run in milliseconds and the median.
#
#   cargo build --release -p switchyard && scripts/bench/startup.sh [runs]
set -euo pipefail
cd "$(dirname "$0")/../.."
binary=${SWITCHYARD_BIN:-target/release/switchyard}
runs=${1:-20}
port=18731
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

measure() { # $1 = data dir; prints milliseconds to a healthy server
  local start end pid
  start=$(date +%s%N)
  "$binary" serve --listen "127.0.0.1:$port" --data-dir "$1" >/dev/null 2>&1 &
  pid=$!
  until curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; do sleep 0.002; done
  end=$(date +%s%N)
  kill -TERM "$pid"; wait "$pid" || true
  echo $(( (end - start) / 1000000 ))
}

median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

first=(); again=()
for i in $(seq 1 "$runs"); do
  first+=("$(measure "$work/fresh-$i")")
  again+=("$(measure "$work/fresh-$i")")
done
echo "first start (fresh data dir), ms: ${first[*]}"
echo "  median: $(printf '%s\n' "${first[@]}" | median) ms"
echo "restart (existing data dir), ms: ${again[*]}"
echo "  median: $(printf '%s\n' "${again[@]}" | median) ms"
