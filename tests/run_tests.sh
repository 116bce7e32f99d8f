#!/usr/bin/env bash
# run_tests.sh: runs every test program in build/tests and every tests/*.sh
# script, adds up their "RESULT passed failed" lines, and ends with the line
# "N passed, N failed". A program that crashes or prints no RESULT counts as
# one failure. Usage: tests/run_tests.sh [BUILD_DIR]
set -u
build=${1:-build}
pass=0; fail=0; failed_names=()
run_one() {
  local name=$1; shift
  local log; log=$(mktemp)
  echo "== $name"
  "$@" >"$log" 2>&1
  local rc=$?
  cat "$log"
  local line; line=$(grep -E '^RESULT [0-9]+ [0-9]+$' "$log" | tail -n 1)
  rm -f "$log"
  if [ -z "$line" ]; then
    echo "FAIL $name: exited with status $rc and no RESULT line"
    fail=$((fail + 1)); failed_names+=("$name")
    return
  fi
  local p f; read -r _ p f <<<"$line"
  pass=$((pass + p)); fail=$((fail + f))
  if [ "$f" -gt 0 ] || { [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; }; then
    [ "$f" -eq 0 ] && fail=$((fail + 1))
    failed_names+=("$name")
  fi
}
for t in "$build"/tests/test_*; do
  [ -x "$t" ] || continue
  run_one "$(basename "$t")" "$t"
done
for s in tests/*.sh; do
  [ "$(basename "$s")" = run_tests.sh ] && continue
  [ -f "$s" ] || continue
  run_one "$(basename "$s")" bash "$s" "$build"
done
[ ${#failed_names[@]} -gt 0 ] && echo "failing: ${failed_names[*]}"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
