#!/usr/bin/env bash
# io_safetensors_py.sh: safetensors between rn50 and PyTorch. Python
# (tools/safetensors_py.py, plain struct+json+torch) writes every dtype and a
# torchvision resnet18 state_dict; rn50 reads them, checks its float32
# conversions against torch's bit for bit, and re-writes them; Python then
# checks rn50's files tensor for tensor and byte for byte (plus header
# padding and the rn50.crc32c checksum), and torchvision's
# resnet18().load_state_dict(strict=True) accepts rn50's file.
# Usage: bash tests/io_safetensors_py.sh BUILD_DIR
set -u
build=${1:-build}
py=${PYTHON:-/usr/bin/python3}
bin=$build/tests/test_io_safetensors
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0; fail=0
step() { # name, command...
  local name=$1; shift
  local rc
  "$@" >"$tmp/log" 2>&1; rc=$?
  grep -v '^RESULT ' "$tmp/log" | sed 's/^/  /'
  if [ $rc -eq 0 ]; then echo "ok   $name"; pass=$((pass + 1)); else echo "FAIL $name"; fail=$((fail + 1)); fi
}
if ! "$py" -c 'import torch, torchvision' 2>/dev/null; then
  echo "FAIL $py lacks torch/torchvision (apt-get install python3-torch python3-torchvision)"
  echo "RESULT 0 1"; exit 1
fi
step "python writes the fixtures" "$py" tools/safetensors_py.py fixture "$tmp" >/dev/null
step "rn50 reads every dtype (conversions = torch) and re-writes" \
  "$bin" --copy "$tmp/py_all.safetensors" "$tmp/c_all.safetensors" --expect-f32 "$tmp/py_all_f32.safetensors"
step "python reads rn50's file bit for bit, crc and padding ok" \
  "$py" tools/safetensors_py.py compare "$tmp/py_all.safetensors" "$tmp/c_all.safetensors" --crc
step "rn50 re-writes a torchvision resnet18 state_dict" \
  "$bin" --copy "$tmp/resnet18.safetensors" "$tmp/c_resnet18.safetensors"
step "torchvision loads rn50's resnet18 file (strict) with equal weights" \
  "$py" tools/safetensors_py.py load-resnet18 "$tmp/c_resnet18.safetensors" "$tmp/resnet18.safetensors"
echo "RESULT $pass $fail"
[ "$fail" -eq 0 ]
