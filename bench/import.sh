#!/usr/bin/env bash
# bench/import.sh - `seslog import` of a JSON-lines file of mixed SES events
# beside a bare SQLite loop over the same documents (CONTRACT section 9,
# "import"; issue 14). See bench/README.md.
#
# Builds nothing: make built $SESLOG_BIN and $BENCH_DIR/ingest. Writes the
# SES messages of the ingest benchmark's cached events (bodies-N.bin) as
# JSON lines, runs the baseline (`ingest baseline`: the contract's columns
# and the JSON text, 256 rows a transaction, WAL, synchronous=FULL), then
# `seslog import` of the file into a fresh database, and prints events/s of
# both, their ratio, the import's peak RSS and the bytes on disk per event.
# Exits 0 whatever the figures are; 1 when something crashed.
#
# Knobs: BENCH_EVENTS=100000 (events, as for the ingest benchmark),
#        BENCH_KEEP=1 (keep the temp folder)
set -u

SESLOG_BIN=${SESLOG_BIN:-build/seslog}
BENCH_DIR=${BENCH_DIR:-build/bench}
N=${BENCH_EVENTS:-100000}
ING="$BENCH_DIR/ingest"

for f in "$SESLOG_BIN" "$ING"; do
  if [ ! -x "$f" ]; then
    echo "bench: $f is missing; run 'make bench'" >&2
    exit 1
  fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/seslog-import-bench.XXXXXX")
cleanup() {
  if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "bench: kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

field() {
  grep '^RESULT ' "$2" | tail -1 | tr ' ' '\n' | sed -n "s/^$1=//p"
}
verdict() {
  if [ -z "$1" ]; then echo "n/a"; return; fi
  awk -v v="$1" -v l="$3" -v op="$2" 'BEGIN {
    ok = (op == ">=") ? (v + 0 >= l + 0) : (v + 0 <= l + 0); print ok ? "PASS" : "FAIL" }'
}

crashed=0
psi=$(sed -n 's/^some avg10=\([0-9.]*\) avg60=\([0-9.]*\).*/\1 % (10 s), \2 % (60 s)/p' /proc/pressure/cpu 2>/dev/null)
echo "== import benchmark: $N events as JSON lines; CPU pressure before the run: ${psi:-unknown}"

"$ING" prepare --cache-dir "$BENCH_DIR" --n "$N" --cert-dir "$tmp/certs" >"$tmp/prepare.out" ||
  { echo "bench: preparing the events failed" >&2; exit 1; }
"$ING" jsonl --cache-dir "$BENCH_DIR" --n "$N" --out "$tmp/events.jsonl" >"$tmp/jsonl.out" ||
  { echo "bench: writing the JSON lines failed" >&2; exit 1; }
echo "   $(field lines "$tmp/jsonl.out") lines, $(awk -v b="$(field bytes "$tmp/jsonl.out")" 'BEGIN { printf "%.0f", b / 1048576 }') MiB"

# 1. the bare loop over the same documents
echo
"$ING" baseline --cache-dir "$BENCH_DIR" --n "$N" --db "$tmp/baseline.db" | tee "$tmp/baseline.out"
[ "${PIPESTATUS[0]}" -eq 0 ] || crashed=1
rm -f "$tmp"/baseline.db*
base_rps=$(field rows_per_s "$tmp/baseline.out")

# 2. seslog import into a fresh database
echo
/usr/bin/time -f 'TIME %e %M' -o "$tmp/time.out" \
  "$SESLOG_BIN" import --db "$tmp/import/seslog.db" "$tmp/events.jsonl" >"$tmp/import.out" 2>"$tmp/import.err"
rc=$?
cat "$tmp/import.out"
if [ "$rc" -gt 1 ] || ! grep -q '^imported ' "$tmp/import.out"; then
  echo "bench: seslog import failed (status $rc):" >&2
  tail -5 "$tmp/import.err" >&2
  crashed=1
fi
secs=$(awk '/^TIME/ { print $2 }' "$tmp/time.out")
rss=$(awk '/^TIME/ { printf "%.1f", $3 / 1024 }' "$tmp/time.out")
imported=$(sed -n 's/^imported \([0-9]*\),.*/\1/p' "$tmp/import.out")
eps= ratio= bpe=
if [ -n "$secs" ] && [ -n "$imported" ]; then
  eps=$(awk -v n="$imported" -v s="$secs" 'BEGIN { printf "%.0f", (s > 0) ? n / s : 0 }')
  [ -n "$base_rps" ] && ratio=$(awk -v a="$eps" -v b="$base_rps" 'BEGIN { printf "%.2f", a / b }')
  bytes=$(( $(stat -c %s "$tmp/import/seslog.db" 2>/dev/null || echo 0) +
    $(stat -c %s "$tmp/import/seslog.db-wal" 2>/dev/null || echo 0) ))
  [ "$imported" -gt 0 ] && bpe=$(( bytes / imported ))
  echo "  $imported events in $secs s = $eps events/s (the whole process: start, schema, commit)"
  echo "RESULT mode=import events=$imported seconds=$secs eps=$eps rss_mib=$rss bytes_per_event=${bpe:-}"
fi

echo
echo "== import summary ($N events, $(nproc) cores; CPU pressure before: ${psi:-unknown})"
printf '%-40s %-18s %-14s %s\n' "figure" "value" "target" "verdict"
printf '%-40s %-18s %-14s %s\n' "seslog import events/s" "${eps:-?}" "" ""
printf '%-40s %-18s %-14s %s\n' "bare SQLite loop rows/s" "${base_rps:-?}" "" ""
printf '%-40s %-18s %-14s %s\n' "ratio import / bare loop" "${ratio:-?}x" ">= 0.60x" \
  "$(verdict "${ratio:-}" ">=" 0.60)"
printf '%-40s %-18s %-14s %s\n' "peak RSS MiB of seslog import" "${rss:-?}" "<= 64" \
  "$(verdict "${rss:-}" "<=" 64)"
printf '%-40s %-18s %-14s %s\n' "bytes on disk per event" "${bpe:-?}" "<= 1000" \
  "$(verdict "${bpe:-}" "<=" 1000)"

if [ "$crashed" != 0 ]; then
  echo "bench: something crashed (see above)" >&2
  exit 1
fi
exit 0
