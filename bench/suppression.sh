#!/usr/bin/env bash
# bench/suppression.sh - the suppression list benchmark (issue 7).
#
# Against a list of 1,000,000 entries: p99 of GET /api/suppression/{address}
# (target <= 1 ms) and of POST /api/suppression/check with 10,000 addresses
# (target <= 50 ms). Standalone: builds what it needs with make, caches the
# million-entry database under $BENCH_DIR (made once with
# `seslog suppression import`, which takes a while), runs a server on it,
# prints the figures. Exits 0 whatever the figures are; 1 when something
# crashed.
#
# Knobs (environment):
#   BENCH_SUPPRESSION_N=1000000   entries in the list
#   BENCH_GETS=20000              GET requests (half of them for listed addresses)
#   BENCH_CHECKS=100              bulk checks of 10,000 addresses
set -u
cd "$(dirname "$0")/.."
SESLOG_BIN=${SESLOG_BIN:-build/seslog}
BENCH_DIR=${BENCH_DIR:-build/bench}
N=${BENCH_SUPPRESSION_N:-1000000}
GETS=${BENCH_GETS:-20000}
CHECKS=${BENCH_CHECKS:-100}
LOAD="$BENCH_DIR/suppression"

make -s --no-print-directory "$SESLOG_BIN" "$LOAD" || { echo "bench: build failed" >&2; exit 1; }

db="$BENCH_DIR/suppression-$N.db"
if [ ! -s "$db" ]; then
  echo "== suppression: making a list of $N entries (once; cached in $db)"
  rm -f "$db" "$db-wal" "$db-shm"
  t0=$(date +%s)
  "$LOAD" csv "$N" | "$SESLOG_BIN" suppression import --db "$db.tmp" - ||
    { echo "bench: import failed" >&2; rm -f "$db.tmp"*; exit 1; }
  mv "$db.tmp" "$db"
  echo "   made in $(($(date +%s) - t0)) s"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/seslog-bench-sup.XXXXXX")
server_pid=
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$SESLOG_BIN" serve --listen 127.0.0.1:0 --db "$db" --sns-cert-dir "$tmp/certs" --web "$tmp" \
  --log-level info 2>"$tmp/server.log" &
server_pid=$!
port=
for _ in $(seq 1 100); do
  port=$(sed -n 's/.*msg="\{0,1\}listening"\{0,1\} addr="\{0,1\}127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/server.log" | head -1)
  [ -n "$port" ] && break
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$port" ]; then
  echo "bench: the server did not start; its log:" >&2
  cat "$tmp/server.log" >&2
  exit 1
fi

rows=$(sqlite3 "$db" "SELECT count(*) FROM suppression" 2>/dev/null || echo "?")
echo "== suppression benchmark: $rows entries, $(nproc) cores shared by server and client"
echo "   (load average $(cut -d' ' -f1-3 /proc/loadavg): other work on the machine inflates latency;"
echo "    the server's CPU time a request depends on it much less)"
"$LOAD" load "$port" "$N" "$GETS" "$CHECKS" "$server_pid" | tee "$tmp/load.out"
status=${PIPESTATUS[0]}

field() { grep '^RESULT ' "$tmp/load.out" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
verdict() {
  [ -z "$1" ] && { echo "n/a"; return; }
  awk -v v="$1" -v l="$2" 'BEGIN { print (v + 0 <= l + 0) ? "PASS" : "FAIL" }'
}
g99=$(field get_p99)
c99=$(field check_p99)
gcpu=$(field get_cpu)
ccpu=$(field check_cpu)
echo
echo "== suppression summary ($rows entries)"
printf '%-46s %-12s %-10s %s\n' "figure" "value" "target" "verdict"
printf '%-46s %-12s %-10s %s\n' "GET /api/suppression/{address} p99, ms" "${g99:-?}" "<= 1" \
  "$(verdict "${g99:-}" 1)"
printf '%-46s %-12s %-10s %s\n' "POST /api/suppression/check 10,000 p99, ms" "${c99:-?}" "<= 50" \
  "$(verdict "${c99:-}" 50)"
printf '%-46s %-12s\n' "server CPU a GET, ms" "${gcpu:-?}"
printf '%-46s %-12s\n' "server CPU a check of 10,000, ms" "${ccpu:-?}"

kill -TERM "$server_pid"
wait "$server_pid"
rc=$?
server_pid=
if [ "$rc" -ne 0 ] || [ "$status" -ne 0 ]; then
  echo "bench: server exit $rc, load exit $status; server log:" >&2
  tail -20 "$tmp/server.log" >&2
  exit 1
fi
exit 0
