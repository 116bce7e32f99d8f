#!/usr/bin/env bash
# model_cli.sh: the model and weights commands (summary, init, check) on bad
# input, and weights files between rn50 and PyTorch.
#  - an unknown arch, nonsensical image sizes and class counts, unknown
#    options: a message naming the option or value, a non-zero exit;
#  - `rn50 check` on a missing, empty, truncated, garbage or corrupted file
#    and on state_dicts with a missing, extra, misshapen or wrongly typed
#    tensor: exit 1 with a message naming the file and the tensor;
#  - nothing ever dies from a signal (an exit status >= 128 fails the test);
#  - torchvision's resnet50/resnet18().load_state_dict(strict=True) accepts
#    what `rn50 init` writes, and `rn50 check` accepts state_dicts PyTorch
#    wrote (tools/safetensors_py.py);
#  - `rn50 init` writes the same bytes for the same seed at 1 and 2 threads.
# Usage: bash tests/model_cli.sh BUILD_DIR   (env RN50_BIN, default ./rn50)
set -u
bin=${RN50_BIN:-./rn50}
py=${PYTHON:-/usr/bin/python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0; fail=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }

# expect_fail NAME "TEXT1|TEXT2..." CMD...: the command exits 1 or 2 (not by
# a signal, not a sanitizer report) and its output contains every TEXT
expect_fail() {
  local name=$1 texts=$2; shift 2
  "$@" >"$tmp/out" 2>&1
  local rc=$? why=""
  if [ $rc -eq 0 ]; then why="exit 0"
  elif [ $rc -ge 128 ]; then why="killed by signal $((rc - 128))"
  elif [ $rc -gt 2 ]; then why="exit $rc"
  elif grep -qE 'AddressSanitizer|runtime error:|Segmentation' "$tmp/out"; then why="sanitizer report"
  else
    local IFS='|' t
    for t in $texts; do grep -qF -- "$t" "$tmp/out" || why="${why}no '$t' in the message; "; done
  fi
  if [ -z "$why" ]; then ok "$name: $(head -n 1 "$tmp/out" | cut -c1-150)"
  else bad "$name: $why"; head -n 5 "$tmp/out" | sed 's/^/  /'; fi
}
# expect_ok NAME "TEXT1|..." CMD...: exit 0 and every TEXT in the output
expect_ok() {
  local name=$1 texts=$2; shift 2
  "$@" >"$tmp/out" 2>&1
  local rc=$? why=""
  [ $rc -ne 0 ] && why="exit $rc"
  local IFS='|' t
  for t in $texts; do grep -qF -- "$t" "$tmp/out" || why="${why} no '$t' in the output;"; done
  if [ -z "$why" ]; then ok "$name"; else bad "$name: $why"; head -n 12 "$tmp/out" | sed 's/^/  /'; fi
}

# --- arch, image size, classes, options ---
expect_fail "summary unknown arch" "resnet51|unknown arch" "$bin" summary --arch resnet51
expect_fail "summary empty arch" "unknown arch" "$bin" summary --arch ''
expect_fail "init unknown arch" "vgg16|unknown arch" "$bin" init --arch vgg16 --out "$tmp/x.safetensors"
expect_fail "check unknown arch" "resnet9|unknown arch" "$bin" check --arch resnet9 "$tmp/x.safetensors"
expect_fail "bench unknown arch" "resnet0|unknown arch" "$bin" bench --arch resnet0
for s in 0 -5 10 31 100000 abc '' 224x224 1e3 2.5 99999999999999999999; do
  expect_fail "summary --image-size '$s'" "--image-size" "$bin" summary --image-size "$s"
done
for s in 0 -5 abc; do
  expect_fail "bench --image-size '$s'" "--image-size" "$bin" bench --image-size "$s"
done
for c in 0 -1 abc 1.5 2000000 ''; do
  expect_fail "summary --classes '$c'" "--classes" "$bin" summary --classes "$c"
done
expect_fail "init --classes 0" "--classes" "$bin" init --classes 0 --out "$tmp/x.safetensors"
expect_fail "check --classes -3" "--classes" "$bin" check --classes -3 "$tmp/x.safetensors"
expect_fail "init --seed -1" "--seed" "$bin" init --seed -1 --out "$tmp/x.safetensors"
expect_fail "init --zero-gamma=maybe" "--zero-gamma" "$bin" init --zero-gamma=maybe --out "$tmp/x.safetensors"
expect_fail "summary unknown option" "--bogus" "$bin" summary --bogus
expect_fail "summary option without value" "--arch" "$bin" summary --arch
expect_fail "summary stray argument" "stray" "$bin" summary stray
expect_fail "init unknown option" "--shape" "$bin" init --out "$tmp/x.safetensors" --shape 3
expect_fail "init without --out" "--out" "$bin" init
expect_fail "init into a missing directory" "$tmp/no/such/dir/w.safetensors" \
  "$bin" init --arch resnet18 --out "$tmp/no/such/dir/w.safetensors"
expect_fail "check unknown option" "--fast" "$bin" check "$tmp/x.safetensors" --fast
expect_fail "check without a file" "FILE" "$bin" check
expect_fail "check with two files" "one weights file" "$bin" check a.safetensors b.safetensors
expect_fail "unknown command" "frobnicate" "$bin" frobnicate
[ -e "$tmp/x.safetensors" ] && bad "a failed command left $tmp/x.safetensors" || ok "failed commands wrote nothing"

# --- files rn50 writes ---
r18=$tmp/r18.safetensors r50=$tmp/r50.safetensors
expect_ok "init resnet50" "resnet50|25,557,032" "$bin" init --arch resnet50 --out "$r50"
expect_ok "init resnet18, 10 classes, zero gamma (2 threads)" "resnet18|10 classes" \
  env OMP_NUM_THREADS=2 "$bin" init --arch resnet18 --classes 10 --zero-gamma --seed 3 --out "$r18"
expect_ok "check rn50's resnet50" "valid resnet50|classes     1000|25,557,032|crc32c ok" "$bin" check "$r50"
expect_ok "check rn50's resnet18 (arch and classes given)" "valid resnet18|11,181,642" \
  "$bin" check --arch resnet18 --classes 10 "$r18"
OMP_NUM_THREADS=1 "$bin" init --arch resnet18 --classes 10 --zero-gamma --seed 3 --out "$tmp/t1.safetensors" >/dev/null
if cmp -s "$r18" "$tmp/t1.safetensors"; then ok "init: same seed, same bytes at 1 and 2 threads"
else bad "init: same seed, same bytes at 1 and 2 threads"; fi

# --- broken files ---
expect_fail "check a missing file" "$tmp/none.safetensors" "$bin" check "$tmp/none.safetensors"
: >"$tmp/empty.safetensors"
expect_fail "check an empty file" "$tmp/empty.safetensors" "$bin" check "$tmp/empty.safetensors"
expect_fail "check a directory" "$tmp" "$bin" check "$tmp"
size=$(stat -c %s "$r18")
hlen=$(od -An -t u8 -N 8 "$r18" | tr -d ' ')
for cut in 4 8 $((hlen / 2)) $((hlen + 8)) $((size / 2)) $((size - 1)); do
  head -c "$cut" "$r18" >"$tmp/cut_$cut.safetensors"
  expect_fail "check a file truncated to $cut of $size bytes" "$tmp/cut_$cut.safetensors" \
    "$bin" check "$tmp/cut_$cut.safetensors"
done
head -c 100000 /dev/urandom >"$tmp/random.safetensors"
expect_fail "check random bytes" "$tmp/random.safetensors" "$bin" check "$tmp/random.safetensors"
printf 'this is not a safetensors file\n' >"$tmp/text.safetensors"
expect_fail "check a text file" "$tmp/text.safetensors" "$bin" check "$tmp/text.safetensors"
{ printf '\x20\x00\x00\x00\x00\x00\x00\x00'; printf '{"a": {"dtype": "F32", "shape"  '; } >"$tmp/badjson.safetensors"
expect_fail "check a cut JSON header" "$tmp/badjson.safetensors" "$bin" check "$tmp/badjson.safetensors"
{ printf '\xff\xff\xff\xff\xff\xff\xff\x7f{}'; } >"$tmp/huge.safetensors"
expect_fail "check a huge header length" "$tmp/huge.safetensors" "$bin" check "$tmp/huge.safetensors"
cp "$r18" "$tmp/flip.safetensors"
printf '\x5a' | dd of="$tmp/flip.safetensors" bs=1 seek=$((size - 1000)) conv=notrunc status=none
expect_fail "check a file with a flipped data byte" "$tmp/flip.safetensors|checksum mismatch" \
  "$bin" check "$tmp/flip.safetensors"
expect_fail "check --arch resnet50 on a resnet18 file" "$r18|resnet18" "$bin" check --arch resnet50 "$r18"
expect_fail "check --classes 11 on a 10-class file" "$r18|fc.weight" "$bin" check --classes 11 "$r18"

if ! "$py" -c 'import torch, torchvision' 2>/dev/null; then
  bad "$py lacks torch/torchvision (apt-get install python3-torch python3-torchvision)"
  echo "RESULT $pass $fail"; exit 1
fi
# one Python start-up for all PyTorch work
"$py" tools/safetensors_py.py torchvision-load resnet50 "$r50" + torchvision-load resnet18 "$r18" 10 \
  + torchvision-save resnet50 "$tmp/tv50.safetensors" + torchvision-save resnet18 "$tmp/tv18.safetensors" \
  + variants "$r18" "$tmp/var" >"$tmp/py.log" 2>&1
for a in "resnet50().load_state_dict(strict=True) of $r50: ok" "resnet18().load_state_dict(strict=True) of $r18: ok"; do
  if grep -qF "$a" "$tmp/py.log"; then ok "torchvision ${a%% of*} accepts rn50 init's file"
  else bad "torchvision ${a%% of*} accepts rn50 init's file"; sed 's/^/  /' "$tmp/py.log" | head -n 20; fi
done
expect_ok "check a resnet50 state_dict PyTorch wrote" "valid resnet50|25,557,032|classes     1000|checksum none" \
  "$bin" check "$tmp/tv50.safetensors"
expect_ok "check a resnet18 state_dict PyTorch wrote" "valid resnet18|11,689,512|(1..1)" \
  "$bin" check "$tmp/tv18.safetensors"
expect_ok "check rn50's resnet18 as re-written by Python (no metadata)" "valid resnet18" \
  "$bin" check "$tmp/var/ok.safetensors"
while read -r v tensor; do
  f=$tmp/var/$v.safetensors
  expect_fail "check $v (tensor $tensor)" "$f|'$tensor'" "$bin" check "$f"
done <"$tmp/var/tensors.txt"
expect_fail "check a state_dict with a block removed" "$tmp/var/shallow.safetensors|blocks per layer" \
  "$bin" check "$tmp/var/shallow.safetensors"
expect_fail "check a state_dict of another model" "$tmp/var/not_resnet.safetensors|fc.weight" \
  "$bin" check "$tmp/var/not_resnet.safetensors"
expect_fail "check --arch resnet18 --classes 10 with a tensor missing" "$tmp/var/missing.safetensors" \
  "$bin" check --arch resnet18 --classes 10 "$tmp/var/missing.safetensors"
echo "RESULT $pass $fail"
[ "$fail" -eq 0 ]
