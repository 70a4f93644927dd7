#!/bin/sh
# Runs libFuzzer targets for `make fuzz` (see tests/fuzz/README.md).
#   FUZZ_BIN      folder of the built targets (build/fuzz)
#   FUZZ_SECONDS  how long each target runs (60)
#   FUZZ_FRESH=1  start from the seeds alone (CI); otherwise the corpus
#                 grown by earlier runs in $FUZZ_BIN/corpus is kept
#   FUZZ_ARGS     extra libFuzzer flags, e.g. "-jobs=2 -workers=2"
# For each target: replay tests/fuzz/regressions/<target>/* (each must pass), copy the seeds
# of tests/fuzz/corpus/<target> into $FUZZ_BIN/corpus/<target>, fuzz. Crashes, leaks, UB and
# timeouts are written to $FUZZ_BIN/artifacts/<target>/. Exit status 1 when any target failed.
set -u
cd "$(dirname "$0")/../.."
BIN=${FUZZ_BIN:-build/fuzz}
SECONDS_EACH=${FUZZ_SECONDS:-60}
TARGETS=${*:-http sns ses import text rawz}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

failed=""
for t in $TARGETS; do
  exe=$BIN/fuzz_$t
  if [ ! -x "$exe" ]; then
    echo "fuzz: $exe is not built (make fuzz-build)" >&2
    failed="$failed $t"
    continue
  fi
  # import prints a line per document; keep the log readable.
  quiet=""
  [ "$t" = import ] && quiet="-close_fd_mask=3"
  dict=""
  [ -f "tests/fuzz/$t.dict" ] && dict="-dict=tests/fuzz/$t.dict"

  regs=$(find "tests/fuzz/regressions/$t" -type f ! -name '*.md' 2>/dev/null | sort)
  if [ -n "$regs" ]; then
    echo "fuzz: $t: replaying $(echo "$regs" | wc -l) regression input(s)"
    # shellcheck disable=SC2086
    if ! "$exe" $quiet $regs >"$BIN/$t-regressions.log" 2>&1; then
      echo "fuzz: $t: a regression input fails again; see $BIN/$t-regressions.log" >&2
      tail -n 40 "$BIN/$t-regressions.log" >&2
      failed="$failed $t"
      continue
    fi
  fi

  corpus=$BIN/corpus/$t
  art=$BIN/artifacts/$t
  [ "${FUZZ_FRESH:-}" = 1 ] && rm -rf "$corpus"
  mkdir -p "$corpus" "$art"
  cp tests/fuzz/corpus/$t/* "$corpus"/ 2>/dev/null
  echo "fuzz: $t: ${SECONDS_EACH}s on $corpus"
  # shellcheck disable=SC2086
  "$exe" -max_total_time="$SECONDS_EACH" -max_len=65536 -timeout=20 -rss_limit_mb=2560 \
    -print_final_stats=1 -artifact_prefix="$art/" $quiet $dict ${FUZZ_ARGS:-} "$corpus" \
    >"$BIN/$t.log" 2>&1
  rc=$?
  grep -E '^#[0-9]+.*(DONE|pulse)' "$BIN/$t.log" | tail -n 1
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' \
    "$BIN/$t.log" | tr '\n' ' '
  echo
  if [ $rc -ne 0 ]; then
    echo "fuzz: $t FAILED (exit $rc); log $BIN/$t.log, input in $art/" >&2
    grep -E -A 30 '^==[0-9]+==ERROR|runtime error|^SUMMARY' "$BIN/$t.log" | head -n 60 >&2
    failed="$failed $t"
  fi
done

if [ -n "$failed" ]; then
  echo "fuzz: failed:$failed" >&2
  exit 1
fi
echo "fuzz: all targets ran ${SECONDS_EACH}s without a finding"
