#!/usr/bin/env bash
# gpu_train.sh: the training system on the GPU (issue 5 item 5): a CUDA run
# writes checkpoints in the common format, continues on the CPU and the other
# way round, stops cleanly on SIGTERM, skips a non-finite fp16 step; eval and
# predict run on the GPU and agree with the CPU. Skips (RESULT 0 0) without a
# GPU. Run by tools/gpu_check.sh on the GPU machine.
set -u
BIN=${RN50_BIN:-./rn50}
case "$BIN" in /*) ;; *) BIN="$PWD/$BIN" ;; esac
pass=0; fail=0
ok()  { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }
check() { if eval "$2"; then ok "$1"; else bad "$1"; fi; }
WORK=$(mktemp -d /tmp/rn50-gputrain-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
if ! "$BIN" bench --device cuda --arch resnet18 --batch-size 2 --image-size 32 --steps 1 > probe.txt 2>&1; then
  echo "skipped: no GPU ($(tail -n 1 probe.txt))"
  echo "RESULT 0 0"
  exit 0
fi
"$BIN" synth --out data --classes 10 --per-class 64 --val-per-class 8 --size 96x72 > /dev/null 2>&1
O="--data data --arch resnet18 --epochs 2 --batch-size 32 --image-size 64 --val-resize 73 --val-crop 64 --lr 0.05 --log-every 5 --ckpt-steps 5"

"$BIN" train $O --out G --device cuda --precision bf16 --max-steps 10 > g1.log 2>&1; rc=$?
check "cuda bf16 training runs and stops at --max-steps with a checkpoint (rc=$rc)" "[ $rc -eq 0 ] && [ -d G/checkpoints/step-000000010 ]"
check "its log has loss, img/s and a conv cache" "grep -Eq 'step 10/20 loss [0-9.]+ .* img/s' G/train.log && [ -s G/conv_cache.txt ]"
"$BIN" train $O --out G --device cpu > g2.log 2>&1; rc=$?
check "the CUDA run continues on the CPU to the end (rc=$rc)" "[ $rc -eq 0 ] && grep -q 'continuing a cuda bf16 run on cpu' G/train.log && [ -f G/model.safetensors ]"
"$BIN" train $O --out H --device cpu --max-steps 5 > h1.log 2>&1
"$BIN" train $O --out H --device cuda --precision bf16 > h2.log 2>&1; rc=$?
check "a CPU run continues on the GPU to the end (rc=$rc)" "[ $rc -eq 0 ] && grep -q 'resuming from' H/train.log && [ -f H/model.safetensors ]"
"$BIN" eval --data data --weights G/model.safetensors --val-resize 73 --val-crop 64 --device cpu > e_cpu.txt 2>&1
"$BIN" eval --data data --weights G/model.safetensors --val-resize 73 --val-crop 64 --device cuda --precision fp32 --tf32 0 > e_gpu.txt 2>&1
c1=$(sed -nE 's/.*top-1 ([0-9.]+)%.*/\1/p' e_cpu.txt); g1=$(sed -nE 's/.*top-1 ([0-9.]+)%.*/\1/p' e_gpu.txt)
check "eval on the GPU (fp32) agrees with the CPU: top-1 $g1% vs $c1%" "[ -n \"$c1\" ] && awk -v a=\"$c1\" -v b=\"$g1\" 'BEGIN{d=a-b; if(d<0)d=-d; exit !(d<=1.25)}'"
img=$(ls data/val/*/* | head -n 1)
"$BIN" predict --device cuda --weights G/model.safetensors --resize 73 --crop 64 "$img" > p.txt 2>&1
check "predict on the GPU prints 5 classes" "[ \$(grep -cE '^ +[0-9.]+%  +[0-9]+  n[0-9]{8}' p.txt) -eq 5 ]"
"$BIN" train $O --out S --device cuda --ckpt-steps 0 --epochs 50 > s.log 2>&1 & pid=$!
for i in $(seq 1 300); do grep -q 'step 5/20' S/train.log 2>/dev/null && break; sleep 0.1; done
kill -TERM $pid; wait $pid; rc=$?
check "SIGTERM on a CUDA run: checkpoint and exit 0 (rc=$rc)" "[ $rc -eq 0 ] && grep -q '(signal' S/train.log"
RN50_TEST_NAN_AT=2 "$BIN" train $O --out F --device cuda --precision fp16 --max-steps 8 > f.log 2>&1; rc=$?
check "fp16 with a non-finite loss at step 2: skipped, run goes on (rc=$rc)" "[ $rc -eq 0 ] && grep -q 'non-finite loss at step 2' F/train.log && [ -d F/checkpoints/step-000000008 ]"
echo "RESULT $pass $fail"
[ "$fail" -eq 0 ]
