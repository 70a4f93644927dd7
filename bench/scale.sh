#!/usr/bin/env bash
# bench/scale.sh - the scale benchmark (issue 9): the query and ingest figures
# at 10,000,000 stored events, and the size of that database. Not part of
# the default `make bench` (it takes long): BENCH_ONLY=scale bench/all.sh, or
# run it alone. See bench/README.md, "The scale benchmark".
#
# 1. The database. Generating 10M events through the storage code
#    (`query-bench gen`) runs at about 2,800 events/s, an hour. Instead the
#    1,000,000-event database of bench/query.sh ($BENCH_DIR/query/
#    events-1000000.db, made by query.sh when missing or older than a day)
#    is copied and its events are replicated 9 more times in SQL by the
#    sqlite3 CLI, one transaction per copy. Copy k (1..9) of event id gets:
#      id          id + k * B (B = the source's max(id)): copies follow the
#                  source in insertion order, as a bulk import would;
#      messageId, feedbackId, snsMessageId   suffixed "-k" (NULL stays NULL;
#                  feedbackId must differ, it has a unique index; an
#                  snsMessageId stored as 16 bytes stays as it is);
#      timeStamp   moved by k ms within its own minute (+k ms, or -k ms when
#                  +k would cross into the next minute), so the copies stay
#                  within the source's 30 days and in the same rollup minute;
#      the rest    unchanged (raw, the SES JSON, still names the original
#                  mail.messageId, and contentHash is still its hash).
#    recipients: every row of the source again, with the copy's eventId and
#    timeStamp (a recipient row carries its event's timeStamp, in ms). The other
#    tables that name an event id (outbox, suppression,
#    suppression_history) are empty in the generated source (gen writes
#    through store_write only: no sinks, no suppression rules); the script
#    stops if one is not. Rollups: each copy adds to the very minutes the
#    source counted, so every counter of rollup_minute is multiplied by 10
#    at the end; the schema's own triggers carry the change to rollup_hour,
#    which is then checked against rollup_minute summed per hour.
#    The indexes stay in place during the copies: each copy costs about
#    30-60 s, while CREATE INDEX afterwards would read the whole table
#    (25 GB, more than this machine's RAM) once per index, and indexes grown
#    by inserts are what a real database has, so the size is the real one.
#    Journal off and synchronous off while building (a broken build is made
#    again, it is a scratch file), then back to WAL. Checked afterwards:
#    events = 10 x, recipients = 10 x, rollup sums = 10 x, rollup_hour =
#    rollup_minute per hour, PRAGMA integrity_check, `.schema` equal to the
#    source's, journal_mode wal, and `seslog import` of nothing opens it
#    (migrations). Cached as $BENCH_DIR/scale/events-10000000.db; made again
#    when the source was made again (so at most a day old, like query.sh).
#
# 2. The query benchmark of bench/query.sh (`query-bench run`, 1,000 timed
#    requests per scenario, 2,000 events/s ingested meanwhile) against a
#    server on that database, targets x2 (p99 <= 10 ms, timeseries 40 ms).
# 3. Ingest at saturation (`ingest load`, 100,000 signed events over 64
#    connections, as bench/run.sh) against a server on that database, and
#    the same on an empty database for comparison.
#
# The database is used in place (ext4 here: no reflink copy, and a full copy
# is 26 GB). The events posted by steps 2 and 3 are stored in it (step 3
# sees those of step 2 too), and are removed afterwards: rows with an id
# above B*10, and every small table (rollups, suppression, subscriptions,
# monitor_changes, ...) restored from a snapshot taken when the database was
# made. The file keeps its size (the freed pages are reused by the next run).
# An interrupted run leaves a marker; the next run cleans up first.
#
# Knobs (environment):
#   SCALE_BENCH_COPIES=10        copies of the source (events = copies x source)
#   SCALE_BENCH_SOURCE=1000000   events of the source (bench/query.sh's QUERY_BENCH_EVENTS)
#   SCALE_BENCH_REQUESTS=1000    timed requests per query scenario
#   SCALE_BENCH_INGEST=2000      events/s posted during the query run (0: none)
#   SCALE_BENCH_EVENTS=100000    events posted at saturation (default $BENCH_EVENTS)
#   SCALE_BENCH_CONNS=64         connections at saturation (default $BENCH_CONNS)
#   SCALE_BENCH_EMPTY=1          0: skip the saturation run on an empty database
#   SCALE_BENCH_CHECK=integrity  or quick: PRAGMA quick_check after the build
#   SCALE_BENCH_REGEN=1          make the database again
#   SCALE_BENCH_BUILD=0          do not run make first
# Exit status 0 whatever the figures are; 1 when something broke.
set -u
cd "$(dirname "$0")/.." || exit 1

SESLOG_BIN=${SESLOG_BIN:-build/seslog}
BENCH_DIR=${BENCH_DIR:-build/bench}
COPIES=${SCALE_BENCH_COPIES:-10}
SRC_N=${SCALE_BENCH_SOURCE:-1000000}
REQ=${SCALE_BENCH_REQUESTS:-1000}
RATE=${SCALE_BENCH_INGEST:-2000}
ING_N=${SCALE_BENCH_EVENTS:-${BENCH_EVENTS:-100000}}
CONNS=${SCALE_BENCH_CONNS:-${BENCH_CONNS:-64}}
CHECK=${SCALE_BENCH_CHECK:-integrity}
QB="$BENCH_DIR/query-bench"
ING="$BENCH_DIR/ingest"
TOPIC="arn:aws:sns:us-east-1:123456789012:seslog-bench"
N=$((SRC_N * COPIES))
MIN_FREE=$((15 * 1073741824)) # bytes the disk keeps free

case $CHECK in integrity | quick) ;; *)
  echo "scale bench: SCALE_BENCH_CHECK is integrity or quick" >&2
  exit 1
  ;;
esac
[ "$COPIES" -ge 1 ] 2>/dev/null || { echo "scale bench: bad SCALE_BENCH_COPIES" >&2; exit 1; }

if [ "${SCALE_BENCH_BUILD:-1}" = 1 ]; then
  make --no-print-directory -s BUILD="$(dirname "$SESLOG_BIN")" "$SESLOG_BIN" "$QB" "$ING" \
    >/dev/null || { echo "scale bench: build failed" >&2; exit 1; }
fi
for f in "$SESLOG_BIN" "$QB" "$ING"; do
  [ -x "$f" ] || { echo "scale bench: $f is missing" >&2; exit 1; }
done
command -v sqlite3 >/dev/null || { echo "scale bench: the sqlite3 CLI is missing" >&2; exit 1; }

t_start=$(date +%s.%N)
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
mib() { awk -v s="$1" 'BEGIN { printf "%.0f", s / 1048576 }'; }
die() {
  echo "scale bench: $*" >&2
  exit 1
}
# q DB SQL: one value from the sqlite3 CLI (waits for a busy database)
q() { sqlite3 -cmd ".timeout 10000" "$1" "$2"; }

src_dir="$BENCH_DIR/query"
src="$src_dir/events-$SRC_N.db"
src_made="$src_dir/events-$SRC_N.made"
dir="$BENCH_DIR/scale"
cache="$dir/events-$N.db"
made="$dir/events-$N.made"   # touched when the database was made
info="$dir/events-$N.info"   # key=value: figures of the build, B
snap="$dir/events-$N.snap.db" # the small tables as made, for the cleanup
dirty="$dir/events-$N.dirty"  # present while a run may have added events
tmp="$dir/events-$N.db.tmp"
mkdir -p "$dir"
: >"$dir/empty.jsonl"

# RESULT line field: field NAME FILE
field() { grep '^RESULT ' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p" | tail -1; }
# info value: ival KEY
ival() { sed -n "s/^$1=//p" "$info" 2>/dev/null | tail -1; }

server_pid=
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
  fi
  rm -rf "$dir/empty" "$dir/certs"
  rm -f "$tmp" "$tmp-wal" "$tmp-shm" "$tmp-journal"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

psi=$(sed -n 's/^some avg10=\([0-9.]*\) avg60=\([0-9.]*\).*/\1 % (10 s), \2 % (60 s)/p' /proc/pressure/cpu 2>/dev/null)
echo "== scale benchmark: $N events; $(nproc) cores shared by server and client;" \
  "SQLite $(sqlite3 --version | cut -d' ' -f1); CPU pressure before: ${psi:-unknown}"

# ---- 1. the database ------------------------------------------------------

# The source: bench/query.sh's cached database (it makes it again when it is
# older than a day: its events span the 30 days before it was made).
if [ ! -f "$src" ] || [ ! -f "$src_made" ] || [ -n "$(find "$src_made" -mmin +1440)" ]; then
  echo "== making the $SRC_N-event source with bench/query.sh (it also runs the query benchmark on it)"
  t=$(now)
  QUERY_BENCH_EVENTS=$SRC_N QUERY_BENCH_BUILD=0 bench/query.sh || die "bench/query.sh failed"
  echo "   source made in $(since "$t") s"
fi

# cleanup_db: removes what earlier runs stored in the cached database.
cleanup_db() {
  local b10 tables t sql
  b10=$(ival max_id)
  if [ -z "$b10" ] || [ ! -f "$snap" ]; then
    die "$info or $snap is missing; SCALE_BENCH_REGEN=1 makes the database again"
  fi
  # The small tables, rollup_hour last: deleting and inserting the minutes
  # fires its triggers, then it is restored as it was.
  tables=$(q "$snap" "SELECT name FROM sqlite_schema WHERE type = 'table' AND name <> 'rollup_hour' ORDER BY name")
  sql=".bail on
ATTACH '$snap' AS snap;
BEGIN IMMEDIATE;
DELETE FROM main.recipients WHERE eventId > $b10;
DELETE FROM main.SesEventMessages WHERE id > $b10;"
  for t in $tables rollup_hour; do
    sql="$sql
DELETE FROM main.\"$t\";
INSERT INTO main.\"$t\" SELECT * FROM snap.\"$t\";"
  done
  sql="$sql
COMMIT;
PRAGMA wal_checkpoint(TRUNCATE);"
  printf '%s\n' "$sql" | sqlite3 -cmd ".timeout 10000" "$cache" >/dev/null || return 1
  local n
  n=$(q "$cache" "SELECT count(*) FROM SesEventMessages")
  [ "$n" = "$(ival events)" ] || { echo "scale bench: $n events after the cleanup, not $(ival events)" >&2; return 1; }
  rm -f "$dirty"
}

if [ "${SCALE_BENCH_REGEN:-0}" = 1 ] || [ ! -f "$cache" ] || [ ! -f "$made" ] || [ ! -f "$info" ] ||
  [ ! -f "$snap" ] || [ "$src_made" -nt "$made" ]; then
  echo "== making $cache: the $SRC_N events of $src, $COPIES times"
  t_build=$(now)
  rm -f "$cache" "$cache-wal" "$cache-shm" "$made" "$info" "$snap" "$dirty" "$tmp"*
  # Bring the source to this build's schema (import of nothing runs the
  # migrations), so the copy has the schema this seslog expects, and fold
  # its WAL in: the copies read it as an immutable file.
  "$SESLOG_BIN" import --db "$src" --log-level error "$dir/empty.jsonl" >/dev/null ||
    die "cannot open $src"
  q "$src" "PRAGMA wal_checkpoint(TRUNCATE)" >/dev/null
  [ -s "$src-wal" ] && die "$src-wal is not empty (is something writing the source?)"
  src_size=$(stat -c %s "$src")
  avail=$(df -B1 --output=avail "$dir" | tail -1)
  need=$((src_size * COPIES + MIN_FREE))
  [ "$avail" -ge "$need" ] ||
    die "$(mib "$avail") MiB free; making the database needs about $(mib $((src_size * COPIES))) MiB and keeps $(mib $MIN_FREE) MiB free"

  # What the copies rely on.
  B=$(q "$src" "SELECT max(id) FROM SesEventMessages")
  src_events=$(q "$src" "SELECT count(*) FROM SesEventMessages")
  src_rcpts=$(q "$src" "SELECT count(*) FROM recipients")
  [ "$src_events" -gt 0 ] || die "$src has no events"
  pat='[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z'
  # recipients hold the time as ms since the epoch (schema version 23)
  bad=$(q "$src" "SELECT (SELECT count(*) FROM SesEventMessages WHERE timeStamp NOT GLOB '$pat')
    + (SELECT count(*) FROM recipients WHERE typeof(timeStamp) <> 'integer')")
  [ "$bad" = 0 ] || die "$bad timeStamps of $src are not YYYY-MM-DDTHH:MM:SS.mmmZ (ms in recipients)"
  # Tables other than these two that name an event id must be empty: the
  # copies do not replicate them.
  for t in $(q "$src" "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'
      AND name NOT IN ('SesEventMessages', 'recipients')"); do
    if [ -n "$(q "$src" "SELECT 1 FROM pragma_table_info('$t') WHERE name = 'eventId'")" ] &&
      [ "$(q "$src" "SELECT count(*) FROM \"$t\"")" != 0 ]; then
      die "$t of $src names events and is not empty; the copies do not replicate it"
    fi
  done

  # SQL of copy k: columns from the schema, so a column added by a later
  # migration is copied as it is.
  # ts_shift COLUMN K: the timeStamp K ms later within its minute, or K ms
  # earlier when K ms later is the next minute.
  ts_shift() {
    local m="(CAST(substr($1, 18, 2) AS INTEGER) * 1000 + CAST(substr($1, 21, 3) AS INTEGER))"
    local n="(CASE WHEN $m + $2 <= 59999 THEN $m + $2 ELSE $m - $2 END)"
    echo "substr($1, 1, 17) || printf('%02d.%03dZ', $n / 1000, $n % 1000)"
  }
  # ms_shift COLUMN K: the same for a time in ms since the epoch (recipients).
  ms_shift() {
    local m="(($1 % 60000 + 60000) % 60000)"
    echo "(CASE WHEN $m + $2 <= 59999 THEN $1 + $2 ELSE $1 - $2 END)"
  }
  ev_cols=$(q "$src" "SELECT group_concat(name, ' ') FROM (SELECT name FROM pragma_table_info('SesEventMessages') ORDER BY cid)")
  rc_cols=$(q "$src" "SELECT group_concat(name, ' ') FROM (SELECT name FROM pragma_table_info('recipients') ORDER BY cid)")
  # copy_sql K
  copy_sql() {
    local k=$1 c sel_e="" sel_r="" list_e="" list_r="" e
    for c in $ev_cols; do
      case $c in
        id) e="id + $k * $B" ;;
        messageId | feedbackId) e="$c || '-$k'" ;;
        # a 16-byte snsMessageId (schema version 22) stays a UUID's bytes
        snsMessageId) e="CASE WHEN typeof($c) = 'blob' THEN $c ELSE $c || '-$k' END" ;;
        timeStamp) e=$(ts_shift timeStamp "$k") ;;
        *) e="\"$c\"" ;;
      esac
      sel_e="$sel_e${sel_e:+, }$e"
      list_e="$list_e${list_e:+, }\"$c\""
    done
    for c in $rc_cols; do
      case $c in
        eventId) e="eventId + $k * $B" ;;
        timeStamp) e=$(ms_shift timeStamp "$k") ;;
        *) e="\"$c\"" ;;
      esac
      sel_r="$sel_r${sel_r:+, }$e"
      list_r="$list_r${list_r:+, }\"$c\""
    done
    cat <<EOF
.bail on
PRAGMA journal_mode = OFF;
PRAGMA synchronous = OFF;
PRAGMA locking_mode = EXCLUSIVE;
PRAGMA cache_size = -1048576;
ATTACH 'file:$src?mode=ro&immutable=1' AS src;
BEGIN;
INSERT INTO main.SesEventMessages ($list_e)
  SELECT $sel_e FROM src.SesEventMessages ORDER BY id;
INSERT INTO main.recipients ($list_r)
  SELECT $sel_r FROM src.recipients;
COMMIT;
EOF
  }

  t=$(now)
  cp "$src" "$tmp" || die "cannot copy $src"
  echo "   copy 0 (the source, cp): $(since "$t") s"
  for k in $(seq 1 $((COPIES - 1))); do
    t=$(now)
    copy_sql "$k" | sqlite3 "$tmp" >/dev/null || die "copy $k failed"
    echo "   copy $k: $(since "$t") s ($(mib "$(stat -c %s "$tmp")") MiB)"
  done

  # The rollups: every counter of every minute times $COPIES (each copy
  # counted in the same minutes as the source); the triggers of
  # rollup_minute update rollup_hour by the difference.
  t=$(now)
  counters=$(q "$tmp" "SELECT group_concat(name || ' = ' || name || ' * $COPIES', ', ') FROM pragma_table_info('rollup_minute') WHERE name <> 'minute'")
  printf '.bail on\nPRAGMA journal_mode = OFF;\nPRAGMA synchronous = OFF;\nUPDATE rollup_minute SET %s;\n' \
    "$counters" | sqlite3 "$tmp" >/dev/null || die "updating the rollups failed"
  q "$tmp" "PRAGMA journal_mode = WAL" >/dev/null
  echo "   rollups x$COPIES: $(since "$t") s"
  copy_s=$(since "$t_build")

  # The checks.
  t=$(now)
  ev=$(q "$tmp" "SELECT count(*) FROM SesEventMessages")
  rc=$(q "$tmp" "SELECT count(*) FROM recipients")
  [ "$ev" = $((src_events * COPIES)) ] || die "$ev events, not $((src_events * COPIES))"
  [ "$rc" = $((src_rcpts * COPIES)) ] || die "$rc recipient rows, not $((src_rcpts * COPIES))"
  sums="sum(events), sum(sends), sum(deliveries), sum(bounces), sum(complaints), sum(opens)"
  want=$(q "$src" "SELECT $sums FROM rollup_minute" | awk -F'|' -v c="$COPIES" \
    '{ for (i = 1; i <= NF; i++) printf "%s%d", (i > 1 ? "|" : ""), $i * c; print "" }')
  got=$(q "$tmp" "SELECT $sums FROM rollup_minute")
  [ "$got" = "$want" ] || die "rollup_minute sums $got, not $want"
  hour_cols=$(q "$tmp" "SELECT group_concat(name, ', ') FROM pragma_table_info('rollup_hour') WHERE name <> 'hour'")
  hour_sums=$(q "$tmp" "SELECT group_concat('sum(' || name || ')', ', ') FROM pragma_table_info('rollup_minute') WHERE name <> 'minute'")
  diff_rows=$(q "$tmp" "WITH h AS (SELECT (minute - (minute % 60 + 60) % 60) / 60 AS hour, $hour_sums
      FROM rollup_minute GROUP BY 1)
    SELECT (SELECT count(*) FROM (SELECT hour, $hour_cols FROM rollup_hour EXCEPT SELECT * FROM h))
      + (SELECT count(*) FROM (SELECT * FROM h EXCEPT SELECT hour, $hour_cols FROM rollup_hour))")
  [ "$diff_rows" = 0 ] || die "rollup_hour differs from rollup_minute in $diff_rows hours"
  [ "$(q "$tmp" "PRAGMA journal_mode")" = wal ] || die "the journal mode is not wal"
  [ "$(q "$tmp" "PRAGMA user_version")" = "$(q "$src" "PRAGMA user_version")" ] || die "user_version differs"
  if ! diff <(sqlite3 "$src" .schema) <(sqlite3 "$tmp" .schema) >"$dir/schema.diff"; then
    cat "$dir/schema.diff" >&2
    die "the schema differs from the source's"
  fi
  rm -f "$dir/schema.diff"
  echo "   counts, rollups, schema: ok ($(since "$t") s)"
  t=$(now)
  ok=$(q "$tmp" "PRAGMA ${CHECK}_check")
  [ "$ok" = ok ] || { echo "$ok" | head -20 >&2; die "PRAGMA ${CHECK}_check failed"; }
  check_s=$(since "$t")
  echo "   PRAGMA ${CHECK}_check: ok ($check_s s)"
  t=$(now)
  "$SESLOG_BIN" import --db "$tmp" --log-level error "$dir/empty.jsonl" >/dev/null ||
    die "seslog import cannot open the database"
  echo "   seslog import of nothing (migrations): ok ($(since "$t") s)"

  # Where the bytes are, and the snapshot of the small tables for cleanup_db.
  t=$(now)
  q "$tmp" "SELECT printf('%-40s %7.0f MiB', name, sum(pgsize) / 1048576.0) FROM dbstat
    GROUP BY name HAVING sum(pgsize) >= 1048576 ORDER BY sum(pgsize) DESC" >"$dir/events-$N.sizes"
  small=$(q "$tmp" "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'
      AND name NOT IN ('SesEventMessages', 'recipients')")
  sql="ATTACH '$snap' AS snap;"
  for s in $small; do sql="$sql CREATE TABLE snap.\"$s\" AS SELECT * FROM main.\"$s\";"; done
  q "$tmp" "$sql" >/dev/null || die "cannot write $snap"
  q "$tmp" "PRAGMA wal_checkpoint(TRUNCATE)" >/dev/null
  size=$(stat -c %s "$tmp")
  mv "$tmp" "$cache" || die "cannot rename $tmp"
  rm -f "$tmp-wal" "$tmp-shm"
  build_s=$(since "$t_build")
  {
    echo "max_id=$((B * COPIES))"
    echo "events=$ev"
    echo "recipients=$rc"
    echo "size=$size"
    echo "copy_s=$copy_s"
    echo "check=$CHECK"
    echo "check_s=$check_s"
    echo "build_s=$build_s"
  } >"$info"
  touch "$made"
  echo "   made in $build_s s (copies and rollups $copy_s s, ${CHECK}_check $check_s s)"
else
  echo "== $cache: cached (made $(date -r "$made" '+%Y-%m-%d %H:%M'), in $(ival build_s) s)"
  if [ -f "$dirty" ]; then
    echo "   removing the events an interrupted run stored"
    t=$(now)
    cleanup_db || die "the cleanup failed; SCALE_BENCH_REGEN=1 makes the database again"
    echo "   cleaned up in $(since "$t") s"
  fi
  # This build's migrations, if any (as query.sh does on its cache).
  "$SESLOG_BIN" import --db "$cache" --log-level error "$dir/empty.jsonl" >/dev/null ||
    die "cannot open $cache"
fi

events=$(ival events)
rcpts=$(ival recipients)
size=$(ival size)
size_mib=$(mib "$size")
per_m=$(awk -v s="$size" -v n="$events" 'BEGIN { printf "%.0f", s / n * 1e6 / 1048576 }')
echo "   $events events, $rcpts recipient rows; database $size_mib MiB = $per_m MiB per million events"
sed 's/^/     /' "$dir/events-$N.sizes" 2>/dev/null | head -12
[ -n "${build_s:-}" ] && echo "   step 1 (the database): $build_s s"

# ---- servers ------------------------------------------------------------

# start_server LOG DB ARGS...: sets server_pid and port.
start_server() {
  local log=$1 db=$2
  shift 2
  "$SESLOG_BIN" serve --listen 127.0.0.1:0 --db "$db" --log-level info "$@" 2>"$log" &
  server_pid=$!
  port=
  for _ in $(seq 1 600); do
    port=$(sed -n 's/.*msg=listening addr=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" | head -1)
    [ -n "$port" ] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$port" ]; then
    echo "scale bench: the server did not start; its log:" >&2
    tail -20 "$log" >&2
    return 1
  fi
}

peak_rss_mib() { awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$server_pid/status" 2>/dev/null; }

# stop_server LOG: SIGTERM, wait (at most 60 s); 1 when it had died or failed.
stop_server() {
  local rc=0
  if ! kill -0 "$server_pid" 2>/dev/null; then
    wait "$server_pid" 2>/dev/null
    echo "scale bench: the server died; its log:" >&2
    tail -20 "$1" >&2
    server_pid=
    return 1
  fi
  kill -TERM "$server_pid"
  for _ in $(seq 1 600); do
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$server_pid" 2>/dev/null; then
    echo "scale bench: the server did not stop within 60 s of SIGTERM; killing it" >&2
    kill -KILL "$server_pid"
    rc=1
  fi
  wait "$server_pid" || { echo "scale bench: the server exited with status $? after SIGTERM" >&2; rc=1; }
  server_pid=
  return $rc
}

broken=0
rm -f "$dir/query.txt" "$dir"/sat-*.txt "$dir/result.txt"
touch "$dirty" # from here on, the runs store events in the cached database

# ---- 2. the query benchmark ----------------------------------------------

echo
echo "== queries: $events events; one keep-alive connection, requests one after another;" \
  "ingest at ${RATE}/s (raw delivery) meanwhile"
echo "   (query-bench's own PASS/FAIL below are against the 1M targets; the summary applies x2)"
t=$(now)
if start_server "$dir/server-query.log" "$cache" --sns-basic-auth bench:bench \
  --sns-topic-arn "$TOPIC" --web /nonexistent; then
  "$QB" run --port "$port" --db "$cache" --requests "$REQ" --ingest "$RATE" | tee "$dir/query.txt"
  [ "${PIPESTATUS[0]}" -eq 0 ] || broken=1
  stop_server "$dir/server-query.log" || broken=1
else
  broken=1
fi
query_s=$(since "$t")
echo "   step 2 (queries): $query_s s"

# ---- 3. ingest at saturation ---------------------------------------------

mkdir -p "$dir/certs"
"$ING" prepare --cache-dir "$BENCH_DIR" --n "$ING_N" --cert-dir "$dir/certs" >/dev/null ||
  die "preparing the events failed"

# saturate NAME DB: posts the events; figures in $dir/sat-NAME.txt
saturate() {
  local name=$1 db=$2 log="$dir/server-$1.log"
  start_server "$log" "$db" --sns-cert-dir "$dir/certs" --web /nonexistent || return 1
  "$ING" load --cache-dir "$BENCH_DIR" --n "$ING_N" --port "$port" --conns "$CONNS" \
    --cert-dir "$dir/certs" | tee "$dir/sat-$name.txt"
  local st=${PIPESTATUS[0]}
  local rss
  rss=$(peak_rss_mib)
  echo "  peak RSS          ${rss:-?} MiB"
  echo "RESULT rss=${rss:-}" >>"$dir/sat-$name.txt"
  stop_server "$log" || return 1
  return "$st"
}

if [ "${SCALE_BENCH_EMPTY:-1}" = 1 ]; then
  echo
  echo "== ingest at saturation, empty database: $ING_N events, $CONNS connections"
  t=$(now)
  rm -rf "$dir/empty"
  mkdir -p "$dir/empty"
  saturate empty "$dir/empty/seslog.db" || broken=1
  rows=$(q "$dir/empty/seslog.db" "SELECT count(*) FROM SesEventMessages" 2>&1)
  echo "RESULT rows=$rows" >>"$dir/sat-empty.txt"
  echo "  rows in database  $rows (acknowledged as stored: $(field ok "$dir/sat-empty.txt"))"
  rm -rf "$dir/empty"
  empty_s=$(since "$t")
  echo "   step 3a (ingest, empty database): $empty_s s"
fi

echo
before=$(q "$cache" "SELECT count(*) FROM SesEventMessages")
echo "== ingest at saturation, $before events stored (the $events and those posted in step 2):" \
  "$ING_N events, $CONNS connections"
t=$(now)
saturate big "$cache" || broken=1
after=$(q "$cache" "SELECT count(*) FROM SesEventMessages")
rows=$((after - before))
echo "RESULT rows=$rows" >>"$dir/sat-big.txt"
echo "  rows added        $rows (acknowledged as stored: $(field ok "$dir/sat-big.txt"))"
big_s=$(since "$t")
echo "   step 3b (ingest, $events events): $big_s s"

# ---- cleanup of the cached database -----------------------------------------

echo
t=$(now)
if cleanup_db; then
  cleanup_s=$(since "$t")
  echo "== removed the $((after - events)) events the runs stored: $cleanup_s s" \
    "(file now $(mib "$(stat -c %s "$cache")") MiB, $(mib $(($(q "$cache" "PRAGMA freelist_count") * $(q "$cache" "PRAGMA page_size")))) MiB of it free pages)"
else
  echo "scale bench: the cleanup failed; the next run tries again" >&2
  broken=1
fi

# ---- 4. the summary -------------------------------------------------------

results="$dir/result.txt"
: >"$results"
# verdict VALUE OP LIMIT -> PASS/FAIL/n/a
verdict() {
  if [ -z "$1" ] || [ "$1" = "?" ]; then echo "n/a"; return; fi
  [ -z "$3" ] && return
  awk -v v="$1" -v l="$3" -v op="$2" 'BEGIN {
    ok = (op == ">=") ? (v + 0 >= l + 0) : (v + 0 <= l + 0); print ok ? "PASS" : "FAIL" }'
}
# row NAME SHOWN VALUE OP LIMIT [EXTRA [VERDICT]]: a line of the table and a
# RESULT line; VERDICT overrides the comparison.
row() {
  local v target=""
  v=${7:-$(verdict "$3" "$4" "$5")}
  [ -n "$5" ] && target="$4 $5"
  printf '%-44s %-20s %-12s %s\n' "$1" "$2" "$target" "$v"
  echo "RESULT figure=\"$1\" value=${3:-?}${6:+ $6}${5:+ target=\"$4 $5\"}${v:+ verdict=$v}" >>"$results"
}

short="$events events"
[ $((events % 1000000)) = 0 ] && short="$((events / 1000000))M events"
echo
echo "== scale summary: $events events; targets x2 (issue 9: the targets of issues 2 and 4 within" \
  "a factor of 2); CPU pressure before: ${psi:-unknown}"
printf '%-44s %-20s %-12s %s\n' "figure" "value" "target x2" "verdict"
row "database MiB" "$size_mib" "$size_mib" "" "" "events=$events recipients=$rcpts"
row "database MiB per million events" "$per_m" "$per_m" "" ""
fails=0
while IFS= read -r line; do
  name=$(echo "$line" | sed -n 's/.*name="\([^"]*\)".*/\1/p')
  p50=$(echo "$line" | sed -n 's/.* p50=\([0-9.]*\).*/\1/p')
  p99=$(echo "$line" | sed -n 's/.* p99=\([0-9.]*\).*/\1/p')
  target=$(echo "$line" | sed -n 's/.* target=\([0-9.]*\).*/\1/p')
  errors=$(echo "$line" | sed -n 's/.* errors=\([0-9]*\).*/\1/p')
  limit=$(awk -v t="$target" 'BEGIN { print t * 2 }')
  shown="$p50 / $p99"
  v=$(verdict "$p99" "<=" "$limit")
  if [ "${errors:-0}" != 0 ]; then # an answer that was not 200 fails the figure
    shown="$shown ($errors errors)"
    v=FAIL
  fi
  row "$name, ms p50 / p99" "$shown" "$p99" "<=" "$limit" "p50=$p50 errors=${errors:-?}" "$v"
  [ "$v" = PASS ] || fails=$((fails + 1))
done < <(grep '^RESULT name=' "$dir/query.txt" 2>/dev/null)
ie=$(field ingest_eps "$dir/query.txt" 2>/dev/null)
row "ingest events/s during queries (asked $RATE)" "${ie:-?}" "${ie:-}" "" "" \
  "p50=$(field ingest_p50 "$dir/query.txt") p99=$(field ingest_p99 "$dir/query.txt") errors=$(field ingest_errors "$dir/query.txt")"
for run in big empty; do
  f="$dir/sat-$run.txt"
  [ -f "$f" ] || continue
  label="$short"
  [ "$run" = empty ] && label="empty db"
  eps=$(field eps "$f") p50=$(field p50 "$f") p99=$(field p99 "$f") rss=$(grep '^RESULT rss=' "$f" | sed 's/.*=//')
  ok=$(field ok "$f") rws=$(grep '^RESULT rows=' "$f" | sed 's/.*=//')
  row "ingest events/s, saturation, $label" "${eps:-?}" "${eps:-}" ">=" 10000 "errors=$(field error_kinds "$f")"
  row "ingest ms p50 / p99, saturation, $label" "${p50:-?} / ${p99:-?}" "${p99:-}" "<=" 100 "p50=${p50:-?}"
  row "ingest peak RSS MiB, saturation, $label" "${rss:-?}" "${rss:-}" "<=" 128
  rv=FAIL
  [ -n "$rws" ] && [ "$rws" = "${ok:-x}" ] && rv=PASS
  printf '%-44s %-20s %-12s %s\n' "rows stored = acknowledged, $label" "${rws:-?} = ${ok:-?}" "equal" "$rv"
  echo "RESULT figure=\"rows stored = acknowledged, $label\" value=${rws:-?} acknowledged=${ok:-?} verdict=$rv" >>"$results"
done
total_s=$(since "$t_start")
echo "time: total $total_s s${build_s:+; database $build_s s}; queries $query_s s;" \
  "ingest ${empty_s:+$empty_s s (empty) + }$big_s s; cleanup ${cleanup_s:-?} s"
echo "RESULT figure=\"seconds\" total=$total_s build=${build_s:-cached} queries=$query_s ingest_empty=${empty_s:-} ingest_big=$big_s cleanup=${cleanup_s:-}" >>"$results"
echo "RESULT query_failed=$fails" >>"$results"
cat "$results"

[ "$broken" = 0 ] || { echo "scale bench: something broke (see above)" >&2; exit 1; }
exit 0
