#!/usr/bin/env bash
# io_report_py.sh: rn50's summary.csv is byte for byte what timm's
# update_summary writes for the same epochs (after a resume that redid three
# epochs), its numbers print as Python's repr(), and the plot page is
# well-formed markup. Usage: bash tests/io_report_py.sh BUILD_DIR
set -u
build=${1:-build}
py=${PYTHON:-/usr/bin/python3}
bin=$build/tests/test_io_report
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0; fail=0
check() { # name, command...
  local name=$1; shift
  if "$@" >"$tmp/log" 2>&1; then echo "ok   $name"; pass=$((pass + 1)); else sed 's/^/  /' "$tmp/log"; echo "FAIL $name"; fail=$((fail + 1)); fi
}
mkdir -p "$tmp/s"
check "rn50 writes summary.csv through a resume" "$bin" --summary "$tmp/s"
check "timm's update_summary writes the reference" "$py" tools/report_check.py timm-summary "$tmp/s/rows.txt" "$tmp/s/timm.csv"
check "summary.csv equals timm's byte for byte" cmp "$tmp/s/summary.csv" "$tmp/s/timm.csv"
"$bin" --repr 30000 >"$tmp/repr.txt"
check "30000 floats print as Python's repr()" "$py" tools/report_check.py repr "$tmp/repr.txt"
check "rn50 writes a plot page" "$bin" --plot "$tmp/plot.html"
check "the plot page is well-formed (XML parser), points inside the charts" "$py" tools/report_check.py page "$tmp/plot.html"
echo "RESULT $pass $fail"
[ "$fail" -eq 0 ]
