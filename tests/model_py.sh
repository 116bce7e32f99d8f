#!/usr/bin/env bash
# model_py.sh: rn50's model description against torchvision's models.
#  - `rn50 summary` for resnet50 at 224 px equals the trainer's spec
#    (tests/fixtures/resnet50_summary.txt) byte for byte;
#  - for every arch and several sizes and class counts it equals the table
#    tools/torchsummary_ref.py (torchsummary's summary() re-implemented)
#    prints for the torchvision model, which also reproduces the spec;
#  - rn50's state table (tests/test_model --dump-state) equals torchvision's
#    state_dict(): names, order, dtypes, shapes, for all five arches.
# Usage: bash tests/model_py.sh BUILD_DIR   (env RN50_BIN, default ./rn50)
set -u
build=${1:-build}
bin=${RN50_BIN:-./rn50}
py=${PYTHON:-/usr/bin/python3}
fixture=tests/fixtures/resnet50_summary.txt
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0; fail=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }
same() { # name, file A, file B
  if cmp -s "$2" "$3"; then ok "$1"; else bad "$1"; diff "$2" "$3" | head -n 8 | sed 's/^/  /'; fi
}

"$bin" summary >"$tmp/rn50_default.txt" 2>&1
same "rn50 summary (default resnet50, 224) = spec" "$tmp/rn50_default.txt" "$fixture"
"$bin" summary --arch resnet50 --image-size 224 --classes 1000 >"$tmp/rn50_explicit.txt" 2>&1
same "rn50 summary --arch resnet50 --image-size 224 = spec" "$tmp/rn50_explicit.txt" "$fixture"

if ! "$py" -c 'import torch, torchvision' 2>/dev/null; then
  bad "$py lacks torch/torchvision (apt-get install python3-torch python3-torchvision)"
  echo "RESULT $pass $fail"; exit 1
fi
# ARCH:SIZE[:CLASSES]; odd sizes exercise the floor divisions of every
# strided conv and the max-pool
cases="resnet50:224 resnet18:224 resnet34:224 resnet101:224 resnet152:224 resnet50:160 resnet50:176
  resnet50:192 resnet50:64 resnet50:32 resnet18:224:10 resnet18:33 resnet34:127:5 resnet50:65:1 resnet101:97
  resnet152:255:7 resnet50:4096:3"
if "$py" tools/torchsummary_ref.py --state "$tmp/ref" $cases >"$tmp/py.log" 2>&1; then
  ok "torchsummary_ref.py ran"
else
  bad "torchsummary_ref.py ran"; sed 's/^/  /' "$tmp/py.log"
fi
same "torchsummary_ref.py reproduces the spec (resnet50, 224)" "$tmp/ref/resnet50_224_1000.txt" "$fixture"
for c in $cases; do
  IFS=: read -r arch size classes <<<"$c"
  classes=${classes:-1000}
  "$bin" summary --arch "$arch" --image-size "$size" --classes "$classes" >"$tmp/rn50.txt" 2>&1
  same "rn50 summary $arch at $size px, $classes classes = torchsummary" "$tmp/rn50.txt" \
    "$tmp/ref/${arch}_${size}_${classes}.txt"
done
for st in "$tmp"/ref/*.state; do
  name=$(basename "$st" .state)
  arch=${name%_*}; classes=${name##*_}
  "$build/tests/test_model" --dump-state "$arch" "$classes" >"$tmp/rn50.state" 2>&1
  same "state table $arch ($classes classes) = torchvision state_dict ($(wc -l <"$st") tensors)" "$tmp/rn50.state" "$st"
done
echo "RESULT $pass $fail"
[ "$fail" -eq 0 ]
