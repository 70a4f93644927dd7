#!/usr/bin/env bash
# bench/sqs.sh - draining an SQS backlog (issue 15). See bench/README.md.
#
# The N signed envelopes of bench/ingest's cache (made once, cached in
# $BENCH_DIR) are put in a queue of a local SQS-compatible server (npm
# fauxqs, a child process on 127.0.0.1) twice: once drained by a plain
# receive-and-delete loop (the server's own throughput), once by seslog
# (SNS envelopes verified, stored durably, then deleted). Prints both rates,
# their ratio (target >= 0.8) and seslog's peak RSS. Exits 0 whatever the
# figures are; 1 when something crashed or the database does not hold N
# events at the end.
#
# Knobs (environment):
#   BENCH_EVENTS=100000   messages in the backlog
#   BENCH_POLLERS=2       receives in flight (seslog --sqs-pollers; loops of the plain drain)
#   BENCH_KEEP=1          keep the temp folder
set -u
cd "$(dirname "$0")/.."

SESLOG_BIN=${SESLOG_BIN:-build/seslog}
BENCH_DIR=${BENCH_DIR:-build/bench}
N=${BENCH_EVENTS:-100000}
CACHE_N=$((N > 100000 ? N : 100000)) # the first N of ingest's usual cache
POLLERS=${BENCH_POLLERS:-2}
ING="$BENCH_DIR/ingest"

for f in "$SESLOG_BIN" "$ING"; do
  if [ ! -x "$f" ]; then
    echo "bench: $f is missing; run 'make bench'" >&2
    exit 1
  fi
done
if [ ! -f tests/node_modules/fauxqs/package.json ]; then
  echo "bench: fauxqs is missing; run scripts/install-deps.sh" >&2
  exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/seslog-bench-sqs.XXXXXX")
cleanup() {
  if [ -z "${BENCH_KEEP:-}" ]; then rm -rf "$tmp"; else echo "kept $tmp"; fi
}
trap cleanup EXIT

# The envelopes and their signing certificate (made on the first run).
"$ING" prepare --cache-dir "$BENCH_DIR" --n "$CACHE_N" --cert-dir "$tmp/certs" || exit 1
echo "sqs: $N signed envelopes from $BENCH_DIR/bodies-$CACHE_N.bin; $POLLERS receives in flight"
node bench/sqs.mjs run "$BENCH_DIR/bodies-$CACHE_N.bin" "$tmp" "$tmp/certs" "$SESLOG_BIN" "$N" "$POLLERS"
