#!/usr/bin/env bash
# Runs every suite and ends with one line "N passed, N failed".
#   SESLOG_BIN   the server binary under test [build/seslog]
#   SESLOG_UNIT  the C unit test binary [build/unit-tests]
#   SESLOG_ONLY  run only this suite: unit, e2e
set -u
cd "$(dirname "$0")/.."
export SESLOG_BIN="${SESLOG_BIN:-build/seslog}"
unit="${SESLOG_UNIT:-build/unit-tests}"
only="${SESLOG_ONLY:-}"
passed=0
failed=0
log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT

if [ -z "$only" ] || [ "$only" = unit ]; then
  echo "== unit tests ($unit)"
  "$unit" tests/fixtures | tee "$log/unit.txt" | grep -v '^ok ' || true
  line=$(grep -E '^unit: [0-9]+ passed, [0-9]+ failed' "$log/unit.txt" | tail -1)
  if [ -z "$line" ]; then
    echo "unit tests did not finish (crash?)"
    failed=$((failed + 1))
  else
    p=$(echo "$line" | sed -E 's/^unit: ([0-9]+) passed.*/\1/')
    f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
    passed=$((passed + p))
    failed=$((failed + f))
  fi
fi

if [ -z "$only" ] || [ "$only" = e2e ]; then
  files=$(ls tests/e2e/*.test.mjs 2>/dev/null)
  if [ -n "$files" ]; then
    echo "== end-to-end tests ($SESLOG_BIN)"
    # One file at a time keeps the 2 cores for the server under test.
    node --test --test-concurrency=1 --test-reporter=spec $files 2>&1 | tee "$log/e2e.txt" |
      grep -vE '^\s*✔' || true
    p=$(grep -E '^ℹ pass [0-9]+' "$log/e2e.txt" | tail -1 | awk '{print $3}')
    f=$(grep -E '^ℹ fail [0-9]+' "$log/e2e.txt" | tail -1 | awk '{print $3}')
    if [ -z "$p" ] || [ -z "$f" ]; then
      echo "end-to-end tests did not report (crash?)"
      failed=$((failed + 1))
    else
      passed=$((passed + p))
      failed=$((failed + f))
    fi
  fi
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
