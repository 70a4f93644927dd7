#!/usr/bin/env bash
# bench/dynamodb.sh - replication to DynamoDB under load (issue 8). See bench/README.md.
#
# Against dynalite (tests/node_modules, on-disk store as in the tests) with
# the table of schema/dynamodb-table.json, on fresh servers and databases:
#   1. paced, no replication: the reference;
#   2. paced, replicating bounces and complaints (the default types);
#   3. paced, replicating every event (--dynamodb-types all): every event
#      posted becomes an item, so the offered rate is the item rate;
# and, at saturation, the same events without replication and with a null
# endpoint in BENCH_ROUNDS rounds of alternating order (off then stub, stub
# then off, ...), so a neighbour's load on the shared cores falls on both
# sides alike: each run's events/s and seslog's CPU time an event (user +
# system from /proc/PID/stat, drain included), then the medians and their
# change against the 5 % target; then once with dynalite; then the
# drain rate alone: a backlog built while DynamoDB was away, emptied. During
# each replicated run it samples seslog_outbox_pending{sink="dynamodb"}
# every second until the outbox is empty, prints pending over time and the
# drain rate, and checks the table's item count against the events stored.
# Exits 0 whatever the figures are; 1 only when something crashed or a
# replicated run did not drain.
#
# Knobs (environment):
#   BENCH_EVENTS=100000   distinct signed events (bench/ingest's cache)
#   BENCH_CONNS=64        keep-alive connections
#   BENCH_RATE=5000       events/s of the paced runs
#   BENCH_DURATION=10     seconds of each paced run
#   BENCH_SATURATION=1    0: skip the saturation runs
#   BENCH_ROUNDS=3        saturation rounds (one run without, one with the null endpoint)
#   BENCH_PACED=1         0: skip the paced runs
#   BENCH_BACKLOG=1       0: skip the drain run
#   BENCH_ONLY=backlog    only the drain run
#   BENCH_KEEP=1          keep the temp folder
set -u
cd "$(dirname "$0")/.."

SESLOG_BIN=${SESLOG_BIN:-build/seslog}
BENCH_DIR=${BENCH_DIR:-build/bench}
N=${BENCH_EVENTS:-100000}
CONNS=${BENCH_CONNS:-64}
RATE=${BENCH_RATE:-5000}
DURATION=${BENCH_DURATION:-10}
SATURATION=${BENCH_SATURATION:-1}
ROUNDS=${BENCH_ROUNDS:-3}
PACED=${BENCH_PACED:-1}
BACKLOG=${BENCH_BACKLOG:-1}
ONLY=${BENCH_ONLY:-}
ING="$BENCH_DIR/ingest"
DYNALITE=tests/node_modules/dynalite/cli.js
AWS=/usr/bin/aws
TABLE=SesEventMessages

for f in "$SESLOG_BIN" "$ING"; do
  if [ ! -x "$f" ]; then
    echo "bench: $f is missing; run 'make bench'" >&2
    exit 1
  fi
done
if [ ! -f "$DYNALITE" ] || [ ! -x "$AWS" ]; then
  echo "bench: dynalite or $AWS is missing; run scripts/install-deps.sh" >&2
  exit 1
fi

export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret AWS_REGION=us-east-1
export AWS_PAGER="" AWS_EC2_METADATA_DISABLED=true
tmp=$(mktemp -d "${TMPDIR:-/tmp}/seslog-bench-ddb.XXXXXX")
server_pid= dyn_pid= crashed=0

cleanup() {
  for p in "$server_pid" "$dyn_pid"; do
    if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
      kill -TERM "$p" 2>/dev/null
      wait "$p" 2>/dev/null
    fi
  done
  if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "bench: kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

field() { grep '^RESULT ' "$2" | tail -1 | tr ' ' '\n' | sed -n "s/^$1=//p"; }

# A free loopback port.
free_port() {
  node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# start_dynalite NAME: a fresh dynalite with the table; sets dyn_pid, dyn_url.
start_dynalite() {
  local port
  port=$(free_port)
  node "$DYNALITE" --host 127.0.0.1 --port "$port" --path "$tmp/$1/dynalite" --createTableMs 0 \
    >"$tmp/$1/dynalite.log" 2>&1 &
  dyn_pid=$!
  dyn_url="http://127.0.0.1:$port"
  local i
  for i in $(seq 1 100); do
    grep -q listening "$tmp/$1/dynalite.log" 2>/dev/null && break
    sleep 0.1
  done
  "$AWS" --endpoint-url "$dyn_url" dynamodb create-table \
    --cli-input-json "file://$PWD/schema/dynamodb-table.json" >/dev/null ||
    { echo "bench: cannot create the table" >&2; crashed=1; return 1; }
}

# start_stub NAME: a null DynamoDB that answers every request at once with
# nothing unprocessed, costing next to no CPU: replication against it shows
# what seslog itself spends; sets dyn_pid, dyn_url.
start_stub() {
  local port
  port=$(free_port)
  node -e '
    const http = require("http");
    http.createServer((q, r) => { q.resume(); q.on("end", () => {
      r.writeHead(200, {"content-type": "application/x-amz-json-1.0"});
      r.end("{\"UnprocessedItems\":{}}"); }); })
      .listen(Number(process.argv[1]), "127.0.0.1", () => console.log("listening"));' "$port" \
    >"$tmp/$1/stub.log" 2>&1 &
  dyn_pid=$!
  dyn_url="http://127.0.0.1:$port"
  local i
  for i in $(seq 1 100); do
    grep -q listening "$tmp/$1/stub.log" 2>/dev/null && break
    sleep 0.1
  done
}

stop_dynalite() {
  [ -n "$dyn_pid" ] && kill -TERM "$dyn_pid" 2>/dev/null && wait "$dyn_pid" 2>/dev/null
  dyn_pid=
}

# start_server NAME ARGS...: a fresh database $tmp/NAME/seslog.db; sets server_pid, port.
start_server() {
  local name=$1
  shift
  "$SESLOG_BIN" serve --listen 127.0.0.1:0 --db "$tmp/$name/seslog.db" --sns-cert-dir "$tmp/certs" \
    --log-level info "$@" 2>"$tmp/$name/server.log" &
  server_pid=$!
  port=
  local i
  for i in $(seq 1 100); do
    port=$(sed -n 's/.*msg=listening addr=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/$name/server.log" | head -1)
    [ -n "$port" ] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$port" ]; then
    echo "bench: the server did not start; its log:" >&2
    cat "$tmp/$name/server.log" >&2
    crashed=1
    return 1
  fi
}

stop_server() {
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "bench: the server died during the $1 run; its log:" >&2
    tail -20 "$tmp/$1/server.log" >&2
    crashed=1
    server_pid=
    return 1
  fi
  kill -TERM "$server_pid"
  wait "$server_pid" || { echo "bench: the server exited with $? ($1 run)" >&2; crashed=1; }
  server_pid=
}

# cpu_s [PID]: user+system CPU seconds of the server (or of PID) so far.
cpu_s() {
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/${1:-$server_pid}/stat" 2>/dev/null
}

pending() {
  curl -s "http://127.0.0.1:$port/metrics" | sed -n 's/^seslog_outbox_pending{sink="dynamodb"} //p'
}

# sample NAME: every second, "t pending" into $tmp/NAME/pending.txt until
# the file $tmp/NAME/stop exists and the outbox is empty (or 120 s after).
sample() {
  local t0 now p stopped_at=
  t0=$(date +%s.%N)
  while :; do
    now=$(date +%s.%N)
    p=$(pending)
    echo "$(awk -v a="$now" -v b="$t0" 'BEGIN { printf "%.1f", a - b }') ${p:-?}" >>"$tmp/$1/pending.txt"
    if [ -f "$tmp/$1/stop" ]; then
      [ -z "$stopped_at" ] && stopped_at=$now
      [ "${p:-1}" = 0 ] && break
      if awk -v a="$now" -v b="$stopped_at" 'BEGIN { exit !(a - b > 120) }'; then break; fi
    fi
    sleep 1
  done
}

# run NAME MODE REPLICATE [seslog args]: one run; MODE paced|saturation;
# REPLICATE 0 (none), 1 (dynalite) or stub (a null endpoint).
run() {
  local name=$1 mode=$2 repl=$3
  shift 3
  mkdir -p "$tmp/$name"
  local load_args=(--cache-dir "$BENCH_DIR" --n "$N" --conns "$CONNS")
  [ "$mode" = paced ] && load_args+=(--rate "$RATE" --duration "$DURATION")
  if [ "$repl" != 0 ]; then
    if [ "$repl" = stub ]; then start_stub "$name"; else start_dynalite "$name" || return 1; fi
    start_server "$name" --dynamodb-table "$TABLE" --dynamodb-endpoint "$dyn_url" "$@" || return 1
    sample "$name" &
    local sampler=$!
  else
    start_server "$name" "$@" || return 1
  fi
  local t_load stub0=0
  [ "$repl" = stub ] && stub0=$(cpu_s "$dyn_pid")
  t_load=$(date +%s.%N)
  echo "-- $name"
  "$ING" load "${load_args[@]}" --port "$port" >"$tmp/$name/load.out"
  [ $? -eq 0 ] || crashed=1
  sed -n '/^  committed\|^  latency\|^  errors/p' "$tmp/$name/load.out"
  local t_end
  t_end=$(date +%s.%N)
  if [ "$repl" != 0 ]; then
    touch "$tmp/$name/stop"
    wait "$sampler"
  fi
  local t_drained
  t_drained=$(date +%s.%N)
  echo "cpu=$(cpu_s)" >"$tmp/$name/cpu.txt"
  # the null endpoint runs on the same cores: its CPU is shown beside seslog's
  # (from the start of the load: node's own start is left out)
  [ "$repl" = stub ] && awk -v a="$(cpu_s "$dyn_pid")" -v b="$stub0" \
    'BEGIN { printf "stub_cpu=%.2f\n", a - b }' >>"$tmp/$name/cpu.txt"
  if [ "$repl" != 0 ]; then
    local p_last stored items=- max_p
    p_last=$(tail -1 "$tmp/$name/pending.txt" | cut -d' ' -f2)
    max_p=$(awk '$2 != "?" && $2 > m { m = $2 } END { print m + 0 }' "$tmp/$name/pending.txt")
    stored=$(curl -s "http://127.0.0.1:$port/metrics" | sed -n 's/^seslog_outbox_delivered_total{sink="dynamodb"} //p')
    echo "   pending over time (s pending): $(awk '{ printf "%s%s:%s", (NR > 1 ? ", " : ""), $1, $2 }' "$tmp/$name/pending.txt")"
    local dead
    dead=$(curl -s "http://127.0.0.1:$port/metrics" | sed -n 's/^seslog_outbox_dead_total{sink="dynamodb"} //p')
    stop_server "$name"
    local want
    local where="WHERE notificationType IN ('Bounce','Complaint')"
    [ "$*" = "--dynamodb-types all" ] && where=""
    want=$(sqlite3 "$tmp/$name/seslog.db" "SELECT count(*) FROM SesEventMessages $where")
    [ "$repl" = 1 ] && items=$("$AWS" --endpoint-url "$dyn_url" dynamodb scan --table-name "$TABLE" \
      --select COUNT --output text --query Count 2>/dev/null | awk '{ n += $1 } END { print n + 0 }')
    stop_dynalite
    local load_s drain_s rate
    load_s=$(awk -v a="$t_end" -v b="$t_load" 'BEGIN { printf "%.1f", a - b }')
    drain_s=$(awk -v a="$t_drained" -v b="$t_end" 'BEGIN { printf "%.1f", a - b }')
    rate=$(awk -v n="${stored:-0}" -v a="$t_drained" -v b="$t_load" 'BEGIN { printf "%.0f", n / (a - b) }')
    echo "   replicated ${stored:-?} items in ${load_s} s of load + ${drain_s} s after = ${rate} items/s; max pending ${max_p}; dead ${dead:-?}"
    [ "$repl" = 1 ] && echo "   table holds ${items:-?} items; replicated events stored ${want:-?}"
    echo "RESULT name=$name max_pending=$max_p last_pending=${p_last:-?} items=${items:-?} stored=${stored:-?} want=${want:-?} drain_s=$drain_s item_rate=$rate dead=${dead:-?}" >"$tmp/$name/repl.out"
    [ "${p_last:-1}" = 0 ] || { echo "bench: $name did not drain" >&2; crashed=1; }
  else
    stop_server "$name"
  fi
}

# run_backlog: the drain rate alone. Events are ingested (every type
# replicated) while DynamoDB is away, so they pile up in the outbox; then
# seslog stops, the rows are made due at once, dynalite comes up and seslog
# starts again: pending is sampled every second until the outbox is empty.
run_backlog() {
  local name=backlog
  mkdir -p "$tmp/$name"
  local dport
  dport=$(free_port)
  start_server "$name" --dynamodb-table "$TABLE" --dynamodb-endpoint "http://127.0.0.1:$dport" \
    --dynamodb-types all || return 1
  echo "-- $name: events ingested at $RATE/s for $DURATION s while DynamoDB is away"
  "$ING" load --cache-dir "$BENCH_DIR" --n "$N" --conns "$CONNS" --port "$port" --rate "$RATE" \
    --duration "$DURATION" >"$tmp/$name/load.out" || crashed=1
  sed -n '/^  committed/p' "$tmp/$name/load.out"
  stop_server "$name" || return 1
  sqlite3 "$tmp/$name/seslog.db" "UPDATE outbox SET attempts = 0, nextAttemptAt = 0 WHERE sink = 'dynamodb'"
  local backlog
  backlog=$(sqlite3 "$tmp/$name/seslog.db" "SELECT count(*) FROM outbox WHERE sink = 'dynamodb' AND state = 'pending'")
  node "$DYNALITE" --host 127.0.0.1 --port "$dport" --path "$tmp/$name/dynalite" --createTableMs 0 \
    >"$tmp/$name/dynalite.log" 2>&1 &
  dyn_pid=$!
  dyn_url="http://127.0.0.1:$dport"
  local i
  for i in $(seq 1 100); do grep -q listening "$tmp/$name/dynalite.log" 2>/dev/null && break; sleep 0.1; done
  "$AWS" --endpoint-url "$dyn_url" dynamodb create-table \
    --cli-input-json "file://$PWD/schema/dynamodb-table.json" >/dev/null || { crashed=1; return 1; }
  mv "$tmp/$name/server.log" "$tmp/$name/server-1.log"
  local t0 t1
  t0=$(date +%s.%N)
  "$SESLOG_BIN" serve --listen 127.0.0.1:0 --db "$tmp/$name/seslog.db" --sns-cert-dir "$tmp/certs" \
    --log-level info --dynamodb-table "$TABLE" --dynamodb-endpoint "$dyn_url" --dynamodb-types all \
    2>"$tmp/$name/server.log" &
  server_pid=$!
  port=
  for i in $(seq 1 100); do
    port=$(sed -n 's/.*msg=listening addr=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/$name/server.log" | head -1)
    [ -n "$port" ] && break
    sleep 0.1
  done
  touch "$tmp/$name/stop"
  sample "$name"
  t1=$(date +%s.%N)
  local p_last rate items
  p_last=$(tail -1 "$tmp/$name/pending.txt" | cut -d' ' -f2)
  rate=$(awk -v n="$backlog" -v a="$t1" -v b="$t0" 'BEGIN { printf "%.0f", n / (a - b) }')
  echo "   pending over time (s pending): $(awk '{ printf "%s%s:%s", (NR > 1 ? ", " : ""), $1, $2 }' "$tmp/$name/pending.txt")"
  stop_server "$name"
  items=$("$AWS" --endpoint-url "$dyn_url" dynamodb scan --table-name "$TABLE" --select COUNT \
    --output text --query Count 2>/dev/null | awk '{ n += $1 } END { print n + 0 }')
  stop_dynalite
  echo "   drained $backlog rows in $(awk -v a="$t1" -v b="$t0" 'BEGIN { printf "%.1f", a - b }') s = $rate items/s; the table holds $items items"
  echo "RESULT name=$name backlog=$backlog drain_rate=$rate items=$items last_pending=${p_last:-?}" >"$tmp/$name/repl.out"
  [ "${p_last:-1}" = 0 ] || { echo "bench: $name did not drain" >&2; crashed=1; }
}

echo "== DynamoDB replication benchmark: $RATE events/s for $DURATION s against dynalite; $(nproc) cores shared"
echo "   by seslog, dynalite and the load generator (temp folder $tmp)"
"$ING" prepare --cache-dir "$BENCH_DIR" --n "$N" --cert-dir "$tmp/certs" >"$tmp/prepare.out" ||
  { echo "bench: preparing the events failed" >&2; exit 1; }

if [ "$ONLY" != backlog ] && [ "$PACED" != 0 ]; then
  run paced-off paced 0
  run paced-stub paced stub
  run paced-default paced 1
  run paced-all paced 1 --dynamodb-types all
fi
if [ "$SATURATION" = 1 ] && [ "$ONLY" != backlog ]; then
  for r in $(seq 1 "$ROUNDS"); do
    if [ $((r % 2)) = 1 ]; then
      run "saturation-off-$r" saturation 0
      run "saturation-stub-$r" saturation stub
    else
      run "saturation-stub-$r" saturation stub
      run "saturation-off-$r" saturation 0
    fi
  done
  run saturation-default saturation 1
fi
[ "$BACKLOG" != 0 ] && run_backlog

f() {
  local v
  v=$(field "$1" "$tmp/$2/load.out" 2>/dev/null)
  [ -z "$v" ] && [ -f "$tmp/$2/repl.out" ] && v=$(field "$1" "$tmp/$2/repl.out")
  echo "$v"
}
cpu() { sed -n "s/^${2:-cpu}=//p" "$tmp/$1/cpu.txt" 2>/dev/null; }
# cpu_us NAME [stub_cpu]: seslog's (or the null endpoint's) CPU
# microseconds an event committed in run NAME.
cpu_us() {
  local c n
  c=$(cpu "$1" "${2:-cpu}")
  n=$(f ok "$1")
  awk -v c="$c" -v n="$n" 'BEGIN { if (c == "" || n + 0 == 0) print ""; else printf "%.1f\n", c * 1e6 / n }'
}
# median FIGURE PREFIX: the median over the rounds of FIGURE (a load.out
# field, cpu_us, or stub_us: the null endpoint's) of the runs PREFIX-1 ..
# PREFIX-ROUNDS.
median() {
  local r
  for r in $(seq 1 "$ROUNDS"); do
    case $1 in
      cpu_us) cpu_us "$2-$r" ;;
      stub_us) cpu_us "$2-$r" stub_cpu ;;
      *) f "$1" "$2-$r" ;;
    esac
  done | sort -g | awk 'NF { v[n++] = $1 } END {
    if (!n) exit
    if (n % 2) printf "%s", v[(n - 1) / 2]; else printf "%.10g", (v[n / 2 - 1] + v[n / 2]) / 2 }'
}
# spread: the lowest and highest per-round change of events/s.
spread() {
  local r
  for r in $(seq 1 "$ROUNDS"); do
    awk -v a="$(f eps "saturation-stub-$r")" -v b="$(f eps "saturation-off-$r")" \
      'BEGIN { if (b + 0 > 0 && a != "") printf "%.1f\n", (a - b) * 100 / b }'
  done | awk 'NF { if (n++ == 0 || $1 < lo) lo = $1; if (n == 1 || $1 > hi) hi = $1 }
    END { if (n) printf "%+.1f .. %+.1f %%", lo, hi }'
}
pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0 || a == "") print "?"; else printf "%+.1f %%", (a - b) * 100 / b }'; }
echo
echo "== DynamoDB replication summary ($RATE events/s paced, 40 % bounces + 15 % complaints; $(nproc) cores)"
row() { printf '%-40s %-19s %-19s %-19s %-19s\n' "$@"; }
both() { echo "$(f "$1" "$3") / $(f "$2" "$3")"; }
if [ "$PACED" != 0 ] && [ "$ONLY" != backlog ]; then
row "paced run" "no replication" "null endpoint" "dynalite B+C" "dynalite all types"
row "events/s committed" "$(f eps paced-off)" "$(f eps paced-stub)" "$(f eps paced-default)" "$(f eps paced-all)"
row "latency ms p50 / p99" "$(both p50 p99 paced-off)" "$(both p50 p99 paced-stub)" "$(both p50 p99 paced-default)" \
  "$(both p50 p99 paced-all)"
row "seslog CPU s (load + drain)" "$(cpu paced-off)" "$(cpu paced-stub)" "$(cpu paced-default)" "$(cpu paced-all)"
row "items replicated / in the table" "-" "$(f stored paced-stub) / -" "$(both want items paced-default)" \
  "$(both want items paced-all)"
row "items/s replicated (load + drain)" "-" "$(f item_rate paced-stub)" "$(f item_rate paced-default)" \
  "$(f item_rate paced-all)"
row "max pending / s to drain after load" "-" "$(both max_pending drain_s paced-stub)" \
  "$(both max_pending drain_s paced-default)" "$(both max_pending drain_s paced-all)"
row "errors" "$(f error_kinds paced-off)" "$(f error_kinds paced-stub)" "$(f error_kinds paced-default)" \
  "$(f error_kinds paced-all)"
fi
if [ "$SATURATION" = 1 ] && [ "$ONLY" != backlog ]; then
  echo
  row "saturation ($N events), round" "no replication" "null endpoint" "change" "order"
  for r in $(seq 1 "$ROUNDS"); do
    order="off, stub"
    [ $((r % 2)) = 0 ] && order="stub, off"
    row "$r: events/s committed" "$(f eps "saturation-off-$r")" "$(f eps "saturation-stub-$r")" \
      "$(pct "$(f eps "saturation-stub-$r")" "$(f eps "saturation-off-$r")")" "$order"
    row "$r: seslog CPU us an event" "$(cpu_us "saturation-off-$r")" "$(cpu_us "saturation-stub-$r")" \
      "$(pct "$(cpu_us "saturation-stub-$r")" "$(cpu_us "saturation-off-$r")")" ""
  done
  eps_off=$(median eps saturation-off) eps_stub=$(median eps saturation-stub)
  cpu_off=$(median cpu_us saturation-off) cpu_stub=$(median cpu_us saturation-stub)
  row "median events/s of $ROUNDS" "$eps_off" "$eps_stub" "$(pct "$eps_stub" "$eps_off")" \
    "target >= -5.0 %"
  row "spread of the change (min .. max)" "" "" "$(spread)" ""
  row "median seslog CPU us an event" "$cpu_off" "$cpu_stub" "$(pct "$cpu_stub" "$cpu_off")" \
    "(drain included)"
  row "median null endpoint's CPU us an event" "" "$(median stub_us saturation-stub)" "" \
    "(same cores)"
  echo "RESULT name=saturation rounds=$ROUNDS eps_off=$eps_off eps_stub=$eps_stub cpu_us_off=$cpu_off cpu_us_stub=$cpu_stub"
  echo
  row "saturation, dynalite B+C" "events/s committed" "latency p50 / p99" "items / s to drain" ""
  row "" "$(f eps saturation-default)" "$(both p50 p99 saturation-default)" \
    "$(both items drain_s saturation-default)" ""
fi
if [ "$BACKLOG" != 0 ]; then
  echo
  row "drain rate of a backlog (no ingest)" "$(f drain_rate backlog) items/s" "($(f backlog backlog) rows," \
    "table: $(f items backlog))" ""
fi
echo
echo "   'Keeps up': pending stays bounded during the load and is 0 soon after it. The null endpoint"
echo "   shows what replication costs seslog itself (the 5 % target); with dynalite, a Node.js"
echo "   process shares the same $(nproc) cores with seslog and the load generator, so its CPU"
echo "   comes out of ingest too."

[ "$crashed" = 0 ] || { echo "bench: something crashed or did not drain (see above)" >&2; exit 1; }
exit 0
