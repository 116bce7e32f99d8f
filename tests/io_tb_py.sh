#!/usr/bin/env bash
# io_tb_py.sh: rn50's TensorBoard event files read by an independent Python
# reader (tools/tfevents_read.py: its own CRC-32C, framing and protobuf
# decoder) must give exactly the records rn50 meant to write; where Debian's
# python3-protobuf is installed, Google's protobuf parser must agree too.
# Usage: bash tests/io_tb_py.sh BUILD_DIR
set -u
build=${1:-build}
py=${PYTHON:-/usr/bin/python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0; fail=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }
if "$build/tests/test_io_tb" --write "$tmp/tb" "$tmp/expected" >"$tmp/log" 2>&1; then ok "rn50 writes a run"; else cat "$tmp/log"; bad "rn50 writes a run"; fi
f=$(ls "$tmp"/tb/events.out.tfevents.* 2>/dev/null | head -n 1)
if [ -n "$f" ] && "$py" tools/tfevents_read.py dump "$f" >"$tmp/got" 2>&1 && cmp -s "$tmp/got" "$tmp/expected"; then
  ok "python reader: CRCs, framing and all $(wc -l <"$tmp/got") records as written"
else
  diff "$tmp/got" "$tmp/expected" | head -n 10; bad "python reader agrees with what rn50 wrote"
fi
if "$py" -c 'import google.protobuf' 2>/dev/null; then
  if "$py" tools/tfevents_read.py dump "$f" --protobuf >"$tmp/got2" 2>&1 && cmp -s "$tmp/got2" "$tmp/expected"; then
    ok "google.protobuf decodes every event identically"
  else
    head -n 5 "$tmp/got2"; bad "google.protobuf decodes every event identically"
  fi
else
  echo "note: python3-protobuf not installed; protobuf-library cross-check skipped"
fi
# the reader itself must notice damage (so the checks above mean something)
cp "$f" "$tmp/damaged"; printf '\xaa' | dd of="$tmp/damaged" bs=1 seek=100 conv=notrunc 2>/dev/null
cmp -s "$f" "$tmp/damaged" && { printf '\x55' | dd of="$tmp/damaged" bs=1 seek=100 conv=notrunc 2>/dev/null; }
if "$py" tools/tfevents_read.py dump "$tmp/damaged" >/dev/null 2>&1; then bad "python reader detects a flipped byte"; else ok "python reader detects a flipped byte"; fi
echo "RESULT $pass $fail"
[ "$fail" -eq 0 ]
