#!/usr/bin/env bash
# bench/queue.sh - where does the write queue stop buying throughput and
# start adding latency? The measurement behind the --queue-max default
# (issue 9). See bench/README.md.
#
# For each number of keep-alive connections C (one request in flight on
# each, so at most C events wait for the disk), a fresh server with a queue
# cap far above C takes QUEUE_BENCH_EVENTS signed events as fast as it
# answers. Printed per C: events/s, latency p50/p99, and the write queue
# depth the server reported on /metrics (sampled every 50 ms: mean, max).
# Past the knee events/s stays flat while latency grows with the depth:
# every further queued event is only waiting.
#
# Knobs (environment):
#   QUEUE_BENCH_CONNS="8 32 128 512 1024 2048"   connection counts
#   QUEUE_BENCH_EVENTS=40000                      events per step (from the cached 100,000)
# Exits 0 whatever the figures are; 1 when something crashed.
set -u
cd "$(dirname "$0")/.."

SESLOG_BIN=${SESLOG_BIN:-build/seslog}
BENCH_DIR=${BENCH_DIR:-build/bench}
CONNS_LIST=${QUEUE_BENCH_CONNS:-8 32 128 512 1024 2048}
N=${QUEUE_BENCH_EVENTS:-40000}
CACHE_N=100000
ING="$BENCH_DIR/ingest"

for f in "$SESLOG_BIN" "$ING"; do
  [ -x "$f" ] || { echo "queue bench: $f is missing; run 'make bench'" >&2; exit 1; }
done
ulimit -n 65536 2>/dev/null || ulimit -n 8192 2>/dev/null

tmp=$(mktemp -d "${TMPDIR:-/tmp}/seslog-queue.XXXXXX")
server_pid=
sampler_pid=
crashed=0
cleanup() {
  [ -n "$sampler_pid" ] && kill "$sampler_pid" 2>/dev/null
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

field() {
  grep '^RESULT ' "$2" | tail -1 | tr ' ' '\n' | sed -n "s/^$1=//p"
}

"$ING" prepare --cache-dir "$BENCH_DIR" --n "$CACHE_N" --cert-dir "$tmp/certs" >"$tmp/prepare.out" ||
  { echo "queue bench: preparing the events failed" >&2; exit 1; }

echo "== queue depth benchmark: $N events per step at saturation; $(nproc) cores shared by server and load generator"
printf '  %6s  %9s  %9s  %9s  %11s  %10s\n' conns "events/s" "p50 ms" "p99 ms" "queue mean" "queue max"
for c in $CONNS_LIST; do
  dir="$tmp/c$c"
  mkdir -p "$dir"
  "$SESLOG_BIN" serve --listen 127.0.0.1:0 --db "$dir/seslog.db" --sns-cert-dir "$tmp/certs" \
    --queue-max 1000000 --max-connections $((c + 64)) --log-level info 2>"$dir/server.log" &
  server_pid=$!
  port=
  for _ in $(seq 1 100); do
    port=$(sed -n 's/.*msg=listening addr=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$dir/server.log" | head -1)
    [ -n "$port" ] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$port" ]; then
    echo "queue bench: the server did not start; its log:" >&2
    cat "$dir/server.log" >&2
    exit 1
  fi
  # The queue depth as the server reports it, every 50 ms.
  (
    while :; do
      curl -s "http://127.0.0.1:$port/metrics" | sed -n 's/^seslog_write_queue_depth \([0-9]*\).*/\1/p'
      sleep 0.05
    done
  ) >"$dir/depth" 2>/dev/null &
  sampler_pid=$!
  "$ING" load --cache-dir "$BENCH_DIR" --n "$N" --port "$port" --conns "$c" --cert-dir "$tmp/certs" \
    >"$dir/load.out" 2>&1 || crashed=1
  kill "$sampler_pid" 2>/dev/null
  wait "$sampler_pid" 2>/dev/null
  sampler_pid=
  kill -TERM "$server_pid"
  wait "$server_pid" || { echo "queue bench: the server failed at $c connections" >&2; crashed=1; }
  server_pid=
  eps=$(field eps "$dir/load.out")
  p50=$(field p50 "$dir/load.out")
  p99=$(field p99 "$dir/load.out")
  read -r qmean qmax < <(awk '$1 > 0 { s += $1; n++; if ($1 > m) m = $1 }
    END { printf "%.0f %d\n", n ? s / n : 0, m }' "$dir/depth")
  printf '  %6d  %9s  %9s  %9s  %11s  %10s\n' "$c" "${eps:-?}" "${p50:-?}" "${p99:-?}" "$qmean" "$qmax"
  echo "RESULT conns=$c eps=${eps:-} p50=${p50:-} p99=${p99:-} queue_mean=$qmean queue_max=$qmax" >>"$tmp/results"
done
echo
cat "$tmp/results"
exit $crashed
