#!/usr/bin/env bash
# bench/all.sh - every benchmark of `make bench`, one after another, each
# printing its own figures next to its targets:
#   verify       signature verifications per second, certificate cached (issue 3)
#   ingest       bench/run.sh: saturation and paced ingest, the bare-SQLite
#                ceiling, latency, peak RSS (issue 2)
#   query        bench/query.sh: API latency over 1,000,000 events (issue 4)
#   suppression  bench/suppression.sh: lookups against 1,000,000 entries (issue 7)
#   dynamodb     bench/dynamodb.sh: replication against dynalite (issue 8)
#   scale        bench/scale.sh: queries and ingest at 10,000,000 events, the
#                database's size (issue 9); opt-in, not in the default list:
#                it takes long (about 17 minutes the first time) and the
#                database takes about 26 GB of disk
#   queue        bench/queue.sh: throughput and latency against the write
#                queue's depth, behind the --queue-max default (issue 9);
#                opt-in (BENCH_ONLY=queue)
#   sqs          bench/sqs.sh: draining a 100,000-message SQS backlog from a
#                local SQS-compatible server, beside a plain receive-and-delete
#                loop on the same server (issue 15)
# BENCH_ONLY="verify ingest" runs a subset, BENCH_ONLY=scale the scale
# benchmark. Generated data is cached under $BENCH_DIR, so the first run is
# the slow one. Exits 1 when a benchmark crashed, 0 otherwise (figures are
# reported, not judged, here).
set -u
cd "$(dirname "$0")/.."
export SESLOG_BIN="${SESLOG_BIN:-build/seslog}"
export BENCH_DIR="${BENCH_DIR:-build/bench}"
only="${BENCH_ONLY:-verify ingest query suppression dynamodb sqs}"
status=0
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), load $(cut -d' ' -f1-3 /proc/loadavg)"
for b in $only; do
  echo
  echo "=== $b"
  case $b in
    verify) "$BENCH_DIR/verify" 3 || status=1 ;;
    ingest) bench/run.sh || status=1 ;;
    query) bench/query.sh || status=1 ;;
    suppression) bench/suppression.sh || status=1 ;;
    dynamodb) bench/dynamodb.sh || status=1 ;;
    scale) bench/scale.sh || status=1 ;;
    queue) bench/queue.sh || status=1 ;;
    sqs) bench/sqs.sh || status=1 ;;
    *) echo "bench: unknown benchmark $b" >&2; status=1 ;;
  esac
done
exit $status
