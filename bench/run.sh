#!/usr/bin/env bash
# bench/run.sh - the ingest benchmark (`make bench`). See bench/README.md.
#
# Builds nothing: make built $SESLOG_BIN and $BENCH_DIR/ingest. In a fresh
# temp folder it runs the bare-SQLite baseline, then a saturation run and a
# paced run, each against a fresh server and database, and prints the
# figures next to the targets of issue 2. Exits 0 whatever the figures are;
# 1 only when something crashed (server, load generator, baseline).
#
# Knobs (environment):
#   BENCH_EVENTS=100000   distinct signed events made (and cached) and posted at saturation
#   BENCH_CONNS=64        keep-alive connections
#   BENCH_RATE=5000       events/s of the paced run
#   BENCH_DURATION=10     seconds of the paced run
#   BENCH_PERF=1          record `perf record -g` of the server during the saturation run
#                         into $BENCH_DIR/perf-saturation.data
#   BENCH_KEEP=1          keep the temp folder (databases, server logs)
#   BENCH_SLACK=1         Slack digest mode: the servers send alerts to a local webhook stub
#                         (node) with --slack-max-per-minute 10, so nearly every bounce and
#                         complaint goes into the minute's digest
#   BENCH_PACED=0         skip the paced run
set -u

SESLOG_BIN=${SESLOG_BIN:-build/seslog}
BENCH_DIR=${BENCH_DIR:-build/bench}
N=${BENCH_EVENTS:-100000}
CONNS=${BENCH_CONNS:-64}
RATE=${BENCH_RATE:-5000}
DURATION=${BENCH_DURATION:-10}
ING="$BENCH_DIR/ingest"

for f in "$SESLOG_BIN" "$ING"; do
  if [ ! -x "$f" ]; then
    echo "bench: $f is missing; run 'make bench'" >&2
    exit 1
  fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/seslog-bench.XXXXXX")
server_pid=
stub_pid=
extra_args=()
crashed=0

cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
  fi
  if [ -n "$stub_pid" ]; then
    kill -TERM "$stub_pid" 2>/dev/null
    wait "$stub_pid" 2>/dev/null
  fi
  if [ "${BENCH_KEEP:-0}" = 1 ]; then
    echo "bench: kept $tmp"
  else
    rm -rf "$tmp"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# RESULT line field: field NAME FILE
field() {
  grep '^RESULT ' "$2" | tail -1 | tr ' ' '\n' | sed -n "s/^$1=//p"
}

# start_server NAME: a fresh database $tmp/NAME/seslog.db; sets server_pid, port.
start_server() {
  local dir="$tmp/$1"
  mkdir -p "$dir"
  "$SESLOG_BIN" serve --listen 127.0.0.1:0 --db "$dir/seslog.db" --sns-cert-dir "$tmp/certs" \
    --log-level warn "${extra_args[@]}" 2>"$dir/server.log" &
  server_pid=$!
  port=
  local i
  for i in $(seq 1 100); do
    port=$(sed -n 's/.*msg=listening addr=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$dir/server.log" | head -1)
    # At --log-level warn the "listening" line (level info) is not printed:
    # ask the kernel which port the process listens on.
    if [ -z "$port" ] && command -v ss >/dev/null; then
      port=$(ss -ltnpH 2>/dev/null | grep "pid=$server_pid," |
        sed -n 's/.*127\.0\.0\.1:\([0-9][0-9]*\) .*/\1/p' | head -1)
    fi
    [ -n "$port" ] && break
    if ! kill -0 "$server_pid" 2>/dev/null; then break; fi
    sleep 0.1
  done
  if [ -z "$port" ]; then
    echo "bench: the server did not start listening; its log:" >&2
    cat "$dir/server.log" >&2
    crashed=1
    return 1
  fi
}

# peak_rss_mib: VmHWM of the running server, MiB.
peak_rss_mib() {
  awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$server_pid/status" 2>/dev/null
}

# thread_cpu EVENTS: the server's CPU per event by thread (utime + stime
# of /proc/PID/task/*/stat), the loop thread (its id is the process id)
# first, then the others busiest first; a line per thread that used any;
# then the whole process.
thread_cpu() {
  local hz
  hz=$(getconf CLK_TCK)
  local t
  for t in /proc/"$server_pid"/task/*; do
    # fields after the ")" that closes the name: 12 = utime, 13 = stime
    sed 's/.*) //' "$t/stat" 2>/dev/null | awk -v tid="${t##*/}" -v pid="$server_pid" \
      -v hz="$hz" -v n="$1" '{ us = ($12 + $13) / hz * 1e6 / n
        if (us > 0) printf "%d %s %.1f\n", (tid == pid) ? 0 : 1, tid, us }'
  done | sort -k1,1n -k3,3nr | awk -v pid="$server_pid" '{
    printf "  CPU us/event      %-8s %s\n", ($2 == pid) ? "loop" : "t" $2, $3 }'
  # the process: every thread, also those that ended
  sed 's/.*) //' "/proc/$server_pid/stat" 2>/dev/null |
    awk -v hz="$hz" -v n="$1" '{ printf "  CPU us/event      %-8s %.1f\n", "process", ($12 + $13) / hz * 1e6 / n }'
}

# disk_writes EVENTS: bytes the server wrote to disk (/proc/PID/io write_bytes:
# WAL appends and the checkpointer's copies into the database) per event.
disk_writes() {
  awk -v n="$1" '/^write_bytes:/ { printf "  disk writes/event %.0f bytes = %.1f pages of 4 KiB\n", $2 / n, $2 / n / 4096 }' \
    "/proc/$server_pid/io" 2>/dev/null
}

# space_by_object DB EVENTS: where the bytes are (dbstat), bytes an event per
# table and index, largest first.
space_by_object() {
  sqlite3 "$1" "SELECT name, sum(pgsize), sum(pgsize) * 1.0 / $2 FROM dbstat GROUP BY name
    ORDER BY 2 DESC" 2>/dev/null | awk -F'|' '{ printf "  bytes/event       %-44s %8.1f\n", $1, $3 }'
}

# slack_stub: a local incoming-webhook stand-in (200 "ok" to every POST);
# sets stub_pid and adds the Slack options to extra_args.
slack_stub() {
  node -e '
    const http = require("http");
    let n = 0;
    const s = http.createServer((req, res) => { req.resume(); req.on("end", () => { n++; res.end("ok"); }); });
    s.listen(0, "127.0.0.1", () => console.log(s.address().port));
    process.on("SIGTERM", () => { console.error("slack stub: " + n + " messages"); process.exit(0); });
  ' >"$tmp/slack-stub.port" 2>"$tmp/slack-stub.log" &
  stub_pid=$!
  local i p=
  for i in $(seq 1 50); do
    p=$(head -1 "$tmp/slack-stub.port" 2>/dev/null)
    [ -n "$p" ] && break
    sleep 0.1
  done
  [ -n "$p" ] || { echo "bench: the Slack stub did not start" >&2; exit 1; }
  extra_args=(--slack-webhook-url "http://127.0.0.1:$p/services/T0/B0/bench" --slack-max-per-minute 10)
}

# stop_server NAME: SIGTERM, wait (at most 30 s), check the exit.
stop_server() {
  if ! kill -0 "$server_pid" 2>/dev/null; then
    wait "$server_pid" 2>/dev/null
    echo "bench: the server died during the $1 run (status $?); its log:" >&2
    tail -20 "$tmp/$1/server.log" >&2
    crashed=1
    server_pid=
    return 1
  fi
  kill -TERM "$server_pid"
  local i
  for i in $(seq 1 300); do
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$server_pid" 2>/dev/null; then
    echo "bench: the server did not stop within 30 s of SIGTERM; killing it" >&2
    kill -KILL "$server_pid"
    crashed=1
  fi
  wait "$server_pid"
  local rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "bench: the server exited with status $rc after SIGTERM ($1 run); its log:" >&2
    tail -20 "$tmp/$1/server.log" >&2
    crashed=1
  fi
  server_pid=
}

# Other processes on the machine move these figures a lot (2x is common on
# this 2-core machine): say how busy it was before the run.
psi=$(sed -n 's/^some avg10=\([0-9.]*\) avg60=\([0-9.]*\).*/\1 % (10 s), \2 % (60 s)/p' /proc/pressure/cpu 2>/dev/null)
echo "== ingest benchmark: $N events, $CONNS connections; $(nproc) cores shared by server and load generator"
echo "   (temp folder $tmp; SQLite $(sqlite3 --version 2>/dev/null | cut -d' ' -f1);" \
  "CPU pressure before the run: ${psi:-unknown})"

[ "${BENCH_SLACK:-0}" = 1 ] && slack_stub && echo "   Slack digest mode: ${extra_args[*]}"

# 1. the events (made once and cached in $BENCH_DIR), the certificate
"$ING" prepare --cache-dir "$BENCH_DIR" --n "$N" --cert-dir "$tmp/certs" >"$tmp/prepare.out" ||
  { echo "bench: preparing the events failed" >&2; exit 1; }

# 2. the baseline: bare SQLite on a fresh database
echo
"$ING" baseline --cache-dir "$BENCH_DIR" --n "$N" --db "$tmp/baseline.db" | tee "$tmp/baseline.out"
[ "${PIPESTATUS[0]}" -eq 0 ] || crashed=1
rm -f "$tmp"/baseline.db*
base_rps=$(field rows_per_s "$tmp/baseline.out")

# 3. saturation on a fresh server
echo
sat_ok=0 sat_rss= rows= bpe=
if start_server saturation; then
  perf_pid=
  if [ "${BENCH_PERF:-0}" = 1 ] && command -v perf >/dev/null; then
    perf record -g -p "$server_pid" -o "$BENCH_DIR/perf-saturation.data" >/dev/null 2>&1 &
    perf_pid=$!
    sleep 0.3
  fi
  "$ING" load --cache-dir "$BENCH_DIR" --n "$N" --port "$port" --conns "$CONNS" --cert-dir "$tmp/certs" |
    tee "$tmp/saturation.out"
  [ "${PIPESTATUS[0]}" -eq 0 ] || crashed=1
  if [ -n "$perf_pid" ]; then
    kill -INT "$perf_pid" 2>/dev/null
    wait "$perf_pid" 2>/dev/null
    echo "  perf profile      $BENCH_DIR/perf-saturation.data (perf report -i ... --sort tid,sym)"
  fi
  sat_rss=$(peak_rss_mib)
  thread_cpu "$N"
  disk_writes "$N"
  sat_ok=$(field ok "$tmp/saturation.out")
  stop_server saturation
  rows=$(sqlite3 "$tmp/saturation/seslog.db" "SELECT count(*) FROM SesEventMessages" 2>&1)
  echo "  rows in database  $rows (acknowledged as stored: ${sat_ok:-?})"
  # bytes on disk per event: the database and its WAL after the server's
  # closing checkpoint (a WAL left behind counts too)
  db_bytes=$(( $(stat -c %s "$tmp/saturation/seslog.db" 2>/dev/null || echo 0) +
    $(stat -c %s "$tmp/saturation/seslog.db-wal" 2>/dev/null || echo 0) ))
  if [ "${rows:-0}" -gt 0 ] 2>/dev/null; then
    bpe=$(( db_bytes / rows ))
    echo "  bytes on disk     $db_bytes = $bpe bytes/event"
    space_by_object "$tmp/saturation/seslog.db" "$rows"
    echo "  outbox rows left  $(sqlite3 "$tmp/saturation/seslog.db" "SELECT count(*) FROM outbox" 2>&1)"
  fi
  echo "  peak RSS          ${sat_rss:-?} MiB"
fi

# 4. paced on a fresh server
echo
if [ "${BENCH_PACED:-1}" != 0 ] && start_server paced; then
  "$ING" load --cache-dir "$BENCH_DIR" --n "$N" --port "$port" --conns "$CONNS" --cert-dir "$tmp/certs" \
    --rate "$RATE" --duration "$DURATION" | tee "$tmp/paced.out"
  [ "${PIPESTATUS[0]}" -eq 0 ] || crashed=1
  pace_rss=$(peak_rss_mib)
  stop_server paced
  echo "  peak RSS          ${pace_rss:-?} MiB"
fi

# 5. the summary
sat_eps=$(field eps "$tmp/saturation.out" 2>/dev/null)
sat_p50=$(field p50 "$tmp/saturation.out" 2>/dev/null)
sat_p99=$(field p99 "$tmp/saturation.out" 2>/dev/null)
sat_err=$(field error_kinds "$tmp/saturation.out" 2>/dev/null)
pace_eps=$(field eps "$tmp/paced.out" 2>/dev/null)
pace_p50=$(field p50 "$tmp/paced.out" 2>/dev/null)
pace_p99=$(field p99 "$tmp/paced.out" 2>/dev/null)
pace_err=$(field error_kinds "$tmp/paced.out" 2>/dev/null)

# verdict VALUE OP LIMIT -> PASS/FAIL/n/a
verdict() {
  if [ -z "$1" ]; then echo "n/a"; return; fi
  awk -v v="$1" -v l="$3" -v op="$2" 'BEGIN {
    ok = (op == ">=") ? (v + 0 >= l + 0) : (v + 0 <= l + 0); print ok ? "PASS" : "FAIL" }'
}
ratio=
if [ -n "${sat_eps:-}" ] && [ -n "${base_rps:-}" ] && [ "${base_rps:-0}" != 0 ]; then
  ratio=$(awk -v a="$sat_eps" -v b="$base_rps" 'BEGIN { printf "%.2f", a / b }')
fi
rss_max=$(printf '%s\n%s\n' "${sat_rss:-}" "${pace_rss:-}" | sort -g | tail -1)
rows_ok="FAIL"
[ -n "${rows:-}" ] && [ "$rows" = "${sat_ok:-x}" ] && rows_ok="PASS"

echo
echo "== ingest summary ($N distinct signed events, $CONNS connections, $(nproc) cores;" \
  "CPU pressure before: ${psi:-unknown})"
printf '%-40s %-18s %-14s %s\n' "figure" "value" "target" "verdict"
printf '%-40s %-18s %-14s %s\n' "events/s committed, saturation" "${sat_eps:-?}" ">= 20000" \
  "$(verdict "${sat_eps:-}" ">=" 20000)"
printf '%-40s %-18s %-14s %s\n' "bare SQLite baseline rows/s" "${base_rps:-?}" "" ""
printf '%-40s %-18s %-14s %s\n' "ratio saturation / baseline" "${ratio:-?}x" ">= 0.40x" \
  "$(verdict "${ratio:-}" ">=" 0.40)"
printf '%-40s %-18s %-14s %s\n' "latency ms at saturation, p50 / p99" \
  "${sat_p50:-?} / ${sat_p99:-?}" "p99 <= 50" "$(verdict "${sat_p99:-}" "<=" 50)"
printf '%-40s %-18s %-14s %s\n' "latency ms at $RATE/s, p50 / p99" \
  "${pace_p50:-?} / ${pace_p99:-?}" "p99 <= 10" "$(verdict "${pace_p99:-}" "<=" 10)"
printf '%-40s %-18s %-14s %s\n' "achieved events/s of the $RATE/s run" "${pace_eps:-?}" "" ""
printf '%-40s %-18s %-14s %s\n' "bytes on disk per event (saturation)" "${bpe:-?}" "<= 1000" \
  "$(verdict "${bpe:-}" "<=" 1000)"
printf '%-40s %-18s %-14s %s\n' "peak RSS MiB (saturation / paced)" \
  "${sat_rss:-?} / ${pace_rss:-?}" "<= 64" "$(verdict "${rss_max:-}" "<=" 64)"
printf '%-40s %-18s %-14s %s\n' "rows stored = events acknowledged" "${rows:-?} = ${sat_ok:-?}" \
  "equal" "$rows_ok"
printf '%-40s %s\n' "errors (saturation; paced)" "${sat_err:-?}; ${pace_err:-?}"

if [ -x "$BENCH_DIR/verify" ]; then
  echo
  "$BENCH_DIR/verify" 1 || crashed=1
fi

if [ "$crashed" != 0 ]; then
  echo "bench: something crashed (see above)" >&2
  exit 1
fi
exit 0
