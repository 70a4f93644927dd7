#!/usr/bin/env bash
# bench/query.sh - the query benchmark: GET /api/events pages, cursors,
# /api/stats and /api/timeseries over 1,000,000 stored events, p50/p99 over
# HTTP, while events are ingested at 2,000/s. Runnable alone (it builds what
# it needs) or from `make bench`.
#
# The ingest posted meanwhile is a figure too: its p99 against issue 14's
# target (<= 50 ms), PASS or FAIL on the "ingest meanwhile" line.
#
# The database is generated once by `query-bench gen` (through the storage
# code) and cached as $BENCH_DIR/query/events-N.db; it is made again when it
# is older than a day (its events span the 30 days before it was made, and
# the windows of /api/stats are relative to now). Each run works on a copy,
# so the events ingested during a run never reach the cache.
#
# Knobs (environment):
#   QUERY_BENCH_EVENTS=1000000   events in the database
#   QUERY_BENCH_REQUESTS=1000    timed requests per scenario
#   QUERY_BENCH_INGEST=2000      events/s posted during the run (0: none)
#   QUERY_BENCH_REGEN=1          make the database again
#   QUERY_BENCH_BUILD=0          do not run make first
# Exit status 0 whatever the figures are; 1 when something broke.
set -u
cd "$(dirname "$0")/.."

SESLOG_BIN=${SESLOG_BIN:-build/seslog}
BENCH_DIR=${BENCH_DIR:-build/bench}
N=${QUERY_BENCH_EVENTS:-1000000}
REQ=${QUERY_BENCH_REQUESTS:-1000}
RATE=${QUERY_BENCH_INGEST:-2000}
QB="$BENCH_DIR/query-bench"
TOPIC="arn:aws:sns:us-east-1:123456789012:seslog-bench"

# Bring the binaries up to date (QUERY_BENCH_BUILD=0: use them as they are).
if [ "${QUERY_BENCH_BUILD:-1}" = 1 ]; then
  make --no-print-directory -s BUILD="$(dirname "$SESLOG_BIN")" "$SESLOG_BIN" "$QB" >/dev/null ||
    { echo "query bench: build failed" >&2; exit 1; }
fi
for f in "$SESLOG_BIN" "$QB"; do
  [ -x "$f" ] || { echo "query bench: $f is missing" >&2; exit 1; }
done

cache_dir="$BENCH_DIR/query"
cache="$cache_dir/events-$N.db"
mkdir -p "$cache_dir"
made="$cache_dir/events-$N.made" # touched when generated (migrations touch the database)
if [ "${QUERY_BENCH_REGEN:-0}" = 1 ] || [ ! -f "$cache" ] || [ ! -f "$made" ] ||
  [ -n "$(find "$made" -mmin +1440)" ]; then
  echo "== query benchmark: generating $N events into $cache (once; cached for a day)"
  rm -f "$cache" "$cache-wal" "$cache-shm"
  if ! "$QB" gen --db "$cache.tmp" --events "$N" 2>&1 | grep -v 'database migrated'; then
    echo "query bench: generating failed" >&2
    rm -f "$cache.tmp"*
    exit 1
  fi
  mv "$cache.tmp" "$cache"
  touch "$made"
fi

# Bring the cached database to this build's schema once (import of nothing
# runs the migrations), rather than on every copy.
: >"$cache_dir/empty.jsonl"
"$SESLOG_BIN" import --db "$cache" --log-level error "$cache_dir/empty.jsonl" >/dev/null ||
  { echo "query bench: cannot open $cache" >&2; exit 1; }

work="$cache_dir/run.db"
server_pid=
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
  fi
  rm -f "$work" "$work-wal" "$work-shm" "$cache_dir/server.log"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

size=$(stat -c %s "$cache")
events=$(sqlite3 "$cache" "SELECT count(*) FROM SesEventMessages")
rcpts=$(sqlite3 "$cache" "SELECT count(*) FROM recipients")
per_m=$(awk -v s="$size" -v n="$events" 'BEGIN { printf "%.0f", s / n * 1e6 / 1048576 }')
raw=$(sqlite3 "$cache" "SELECT sum(length(raw)) FROM SesEventMessages")
raw_m=$(awk -v s="$raw" -v n="$events" 'BEGIN { printf "%.0f", s / n * 1e6 / 1048576 }')

cp --reflink=auto "$cache" "$work"
# The copy's pages go to disk now, not while the run measures: on ext4 a
# commit's fsync waits for the journal, which waits for the data of every
# file written before it, and a few hundred MiB of the copy still being
# written back stalled the first second of ingest by about 300 ms.
sync "$work"
"$SESLOG_BIN" serve --listen 127.0.0.1:0 --db "$work" --log-level info \
  --sns-basic-auth bench:bench --sns-topic-arn "$TOPIC" --web /nonexistent \
  2>"$cache_dir/server.log" &
server_pid=$!
port=
for _ in $(seq 1 200); do
  port=$(sed -n 's/.*msg=listening addr=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$cache_dir/server.log" | head -1)
  [ -n "$port" ] && break
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$port" ]; then
  echo "query bench: the server did not start; its log:" >&2
  cat "$cache_dir/server.log" >&2
  exit 1
fi

echo "== query benchmark: $events events, $rcpts recipient rows; $(nproc) cores shared by server and client"
echo "   database $(awk -v s="$size" 'BEGIN { printf "%.0f", s / 1048576 }') MiB = $per_m MiB per million events (of which the original JSON as stored, compressed: $raw_m MiB)"
echo "   one keep-alive connection, requests one after another; ingest at ${RATE}/s (raw delivery) meanwhile"
"$QB" run --port "$port" --db "$work" --requests "$REQ" --ingest "$RATE" | tee "$cache_dir/result.txt"
status=${PIPESTATUS[0]}
if ! kill -0 "$server_pid" 2>/dev/null; then
  echo "query bench: the server died; its log:" >&2
  tail -20 "$cache_dir/server.log" >&2
  exit 1
fi
echo "RESULT db_mib_per_million=$per_m" >>"$cache_dir/result.txt"
[ "$status" -eq 0 ] || exit 1
exit 0
