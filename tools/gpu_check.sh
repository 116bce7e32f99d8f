#!/usr/bin/env bash
# gpu_check.sh: the one script run on the GPU machine. It compiles nothing:
# rn50 and the GPU test programs are built HERE and packed by
# tools/gpu_bundle.sh into build/gpu_bundle.tar.xz, which travels with the
# tree (device tool: carry=["build/gpu_bundle.tar.xz"]). Steps, most
# important first, each under `timeout` and all within a time budget
# (GPU_CHECK_BUDGET seconds, default 440, so the whole call ends well within
# 8 minutes):
#   1. the GPU and the libraries (nvidia-smi, missing shared libraries)
#   2. build/tests/test_cuda_ops: every CUDA op against the CPU backend
#   3. model-level GPU tests (the lead's section below)
#   4. rn50 bench --device cuda bf16, the torch peer, the per-op
#      micro-benchmark (test_cuda_ops --bench), rn50 bench fp32/TF32 and fp16
# Logs go to $OUT (at most 8 files come back: gpu_check.log, summary.txt,
# test_cuda_ops.log, model_tests.log, bench.log, torch_peer.log,
# torch_peer.json); the summary table is printed last.
# Usage (on the GPU machine, from the repository root): bash tools/gpu_check.sh
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${OUT:-$ROOT/gpu_check_out}
mkdir -p "$OUT"
BUDGET=${GPU_CHECK_BUDGET:-440}
T0=$(date +%s)
LOG=$OUT/gpu_check.log
: >"$LOG"
export LD_LIBRARY_PATH=/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cudnn/lib:/usr/local/cuda/lib64:/usr/lib/x86_64-linux-gnu:$ROOT/build/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
PY=/opt/torch/.venv/bin/python
[ -x "$PY" ] || PY=python3

say() { echo "$*" | tee -a "$LOG"; }
ROWS=()  # "step|status|seconds|result"
row() { ROWS+=("$1|$2|$3|$4"); }
left() { echo $((BUDGET - ($(date +%s) - T0))); }

# step NAME CAP LOGFILE CMD...: runs CMD under timeout min(CAP, time left),
# appends its output to LOGFILE, leaves it in $STEP_OUT for parsing and sets
# STEP_RC (124: timed out; "skip": no time left) and STEP_SECS.
STEP_OUT=$(mktemp)
trap 'rm -f "$STEP_OUT"' EXIT
step() {
  local name=$1 cap=$2 logf=$3
  shift 3
  local rem t s
  rem=$(left)
  t=$((cap < rem - 5 ? cap : rem - 5))
  : >"$STEP_OUT"
  STEP_SECS=0
  if [ "$t" -lt 15 ]; then
    STEP_RC=skip
    say "== $name: skipped, out of time"
    return
  fi
  say "== $name (timeout ${t}s): $*"
  echo "== $name: $*" >>"$logf"
  s=$(date +%s)
  timeout -k 5 "$t" "$@" >"$STEP_OUT" 2>&1
  STEP_RC=$?
  STEP_SECS=$(($(date +%s) - s))
  cat "$STEP_OUT" >>"$logf"
  echo "== $name: exit $STEP_RC after ${STEP_SECS}s" >>"$logf"
  tail -n 3 "$STEP_OUT" | sed 's/^/   /' | tee -a "$LOG"
}
status_of() { # exit code -> word
  case "$1" in 0) echo ok ;; 124 | 137) echo TIMEOUT ;; skip) echo skipped ;; *) echo "FAIL($1)" ;; esac
}

# ---- 0. unpack what was built here ----
if [ -f build/gpu_bundle.tar.xz ]; then
  if ! tar -xJf build/gpu_bundle.tar.xz 2>>"$LOG"; then
    "$PY" -c 'import tarfile,sys; tarfile.open(sys.argv[1]).extractall()' build/gpu_bundle.tar.xz 2>>"$LOG" ||
      say "cannot unpack build/gpu_bundle.tar.xz"
  fi
fi

# ---- 1. the machine ----
GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1)
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)  host: $(hostname)"
  nvidia-smi -L
  nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.max.sm,power.limit,driver_version --format=csv
  echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
} >>"$LOG" 2>&1
say "GPU: ${GPU:-none found}"
row "GPU" "$([ -n "$GPU" ] && echo ok || echo FAIL)" 0 "${GPU:-nvidia-smi found no GPU}"
missing=""
for b in rn50 build/tests/test_cuda_ops; do
  if [ ! -x "$b" ]; then
    missing="$missing $b(absent)"
    continue
  fi
  m=$(ldd "$b" 2>&1 | grep 'not found' | awk '{print $1}' | tr '\n' ' ')
  [ -n "$m" ] && missing="$missing $b:[$m]"
done
row "binaries and libraries" "$([ -z "$missing" ] && echo ok || echo FAIL)" 0 "${missing:-all present}"

# ---- 2. op tests ----
FAILED=0
step "ops test" 150 "$OUT/test_cuda_ops.log" env RN50_CUDA_SYNC=1 RN50_TEST_VERBOSE=1 build/tests/test_cuda_ops
res=$(grep -E '^RESULT [0-9]+ [0-9]+$' "$STEP_OUT" | tail -n 1)
if [ -n "$res" ]; then
  read -r _ p f <<<"$res"
  detail="$p passed, $f failed"
  [ "$f" -gt 0 ] && detail="$detail: $(grep '^FAIL' "$STEP_OUT" | sed 's/^FAIL *//' | head -n 6 | tr '\n' ';')"
  grep -q '^skipped' "$STEP_OUT" && detail="$detail ($(grep '^skipped' "$STEP_OUT" | head -n 1))"
else
  detail="no RESULT line"
  f=1
fi
[ "$STEP_RC" != 0 ] && FAILED=1
row "ops test (CUDA vs CPU)" "$(status_of "$STEP_RC")" "$STEP_SECS" "$detail"

# ---- 3. model-level GPU tests (LEAD: add steps here) ----
# Every other GPU test program that tools/gpu_bundle.sh packed runs here.
for t in build/tests/test_cuda_* build/tests/test_gpu_*; do
  [ -x "$t" ] || continue
  [ "$(basename "$t")" = test_cuda_ops ] && continue
  step "$(basename "$t")" 120 "$OUT/model_tests.log" "$t"
  res=$(grep -E '^RESULT [0-9]+ [0-9]+$' "$STEP_OUT" | tail -n 1)
  [ "$STEP_RC" != 0 ] && FAILED=1
  row "$(basename "$t")" "$(status_of "$STEP_RC")" "$STEP_SECS" "${res:-no RESULT line}"
done

# ---- 4. benchmarks: rn50 and the PyTorch peer in the same run ----
declare -A TRAIN
bench() { # bench LABEL rn50-bench-args...
  local label=$1
  shift
  step "bench $label" 120 "$OUT/bench.log" env RN50_CUDA_MEM=1 RN50_CUDA_VERBOSE=1 ./rn50 bench --device cuda "$@"
  local tr inf mem
  tr=$(sed -n 's/.*train img\/s: *\([0-9.]*\).*/\1/p' "$STEP_OUT" | tail -n 1)
  inf=$(sed -n 's/.*infer img\/s: *\([0-9.]*\).*/\1/p' "$STEP_OUT" | tail -n 1)
  mem=$(sed -n 's/.*peak in use \([0-9.]*\) MiB.*rn50.s share \([0-9.]*\) MiB.*/\1 MiB (rn50 \2 MiB)/p' "$STEP_OUT" |
    tail -n 1)
  TRAIN[$label]=$tr
  row "rn50 $label" "$(status_of "$STEP_RC")" "$STEP_SECS" \
    "${tr:+train $tr img/s, infer $inf img/s, peak ${mem:-?}}${tr:-$(tail -n 1 "$STEP_OUT")}"
}
bench "bf16 b256" --precision bf16 --batch-size 256 --steps 30

PEER_BF16="" PEER_FP32="" PEER_COMPILE=""
if [ -f tools/torch_peer.py ]; then
  step "torch peer" 240 "$OUT/torch_peer.log" env OUT="$OUT" "$PY" tools/torch_peer.py
  while read -r line; do
    mode=$(echo "$line" | sed -n 's/.*"mode": *"\([a-z]*\)".*/\1/p')
    dt=$(echo "$line" | sed -n 's/.*"dtype": *"\([^"]*\)".*/\1/p')
    ims=$(echo "$line" | sed -n 's/.*"img_s": *\([0-9.]*\).*/\1/p')
    pk=$(echo "$line" | sed -n 's/.*"peak_gib": *\([0-9.]*\).*/\1/p')
    [ -z "$ims" ] && continue
    case "$mode/$dt" in
      eager/torch.bfloat16) PEER_BF16=$ims ;;
      eager/None) PEER_FP32=$ims ;;
      compile/*) PEER_COMPILE=$ims ;;
    esac
    row "torch $mode $dt" ok - "$(printf '%.1f img/s, peak %.2f GiB' "$ims" "${pk:-0}")"
  done < <(grep '^{' "$STEP_OUT")
  [ "$STEP_RC" != 0 ] && row "torch peer" "$(status_of "$STEP_RC")" "$STEP_SECS" "$(tail -n 1 "$STEP_OUT")"
fi

# per-op times at ResNet-50's batch-256 shapes (where a step's time goes)
step "op micro-bench bf16" 90 "$OUT/bench.log" build/tests/test_cuda_ops --bench bf16 256
row "op micro-bench bf16 (sum of ops)" "$(status_of "$STEP_RC")" "$STEP_SECS" \
  "$(grep '^per step' "$STEP_OUT" | sed 's/^per step (sum over ResNet-50.s ops): //' | tail -n 1)"

bench "fp32 tf32 b256" --precision fp32 --tf32 1 --batch-size 256 --steps 20
bench "fp16 b256" --precision fp16 --batch-size 256 --steps 30
# LEAD: more benchmark steps here (end to end from packed shards, other batch sizes)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.3f", a / b; else printf "n/a" }'; }
[ -n "${TRAIN[bf16 b256]:-}" ] && [ -n "$PEER_BF16" ] &&
  row "ratio rn50 bf16 / torch eager bf16" - - "$(ratio "${TRAIN[bf16 b256]}" "$PEER_BF16")"
[ -n "${TRAIN[bf16 b256]:-}" ] && [ -n "$PEER_COMPILE" ] &&
  row "ratio rn50 bf16 / torch.compile bf16" - - "$(ratio "${TRAIN[bf16 b256]}" "$PEER_COMPILE")"
[ -n "${TRAIN[fp32 tf32 b256]:-}" ] && [ -n "$PEER_FP32" ] &&
  row "ratio rn50 fp32(tf32) / torch eager fp32(tf32)" - - "$(ratio "${TRAIN[fp32 tf32 b256]}" "$PEER_FP32")"

# ---- summary ----
{
  echo
  echo "rn50 GPU check: ${GPU:-no GPU}, $(date -u +%Y-%m-%d), $(($(date +%s) - T0)) s"
  printf '%-46s %-10s %5s  %s\n' step status secs result
  for r in "${ROWS[@]}"; do
    IFS='|' read -r a b c d <<<"$r"
    printf '%-46s %-10s %5s  %s\n' "$a" "$b" "$c" "$d"
  done
} | tee "$OUT/summary.txt" | tee -a "$LOG"
exit $FAILED
