#!/usr/bin/env bash
# gpu_check.sh: the one script run on the GPU machine. It compiles nothing:
# rn50 and the GPU test programs are built HERE and packed by
# tools/gpu_bundle.sh into build/gpu_bundle.tar.xz, which travels with the
# tree. With the device tool, from the repository root:
#   run(command="bash tools/gpu_check.sh", carry=["build/gpu_bundle.tar.xz"], timeout_s=560)
# Steps, each under `timeout`, all within GPU_CHECK_BUDGET seconds (default
# 450; a step that would eat into the time kept for the PyTorch peer's eager
# runs is skipped):
#   machine  nvidia-smi, the bundle, the shared libraries (missing ones are
#            searched for and named), the cuDNN / cuBLAS files found
#   ops      build/tests/test_cuda_ops: every CUDA op against the CPU backend
#   model    build/tests/test_gpu_model (and any other test_gpu_* / test_cuda_*):
#            the whole model against the CPU, a training run, checkpoints,
#            resnet50 b256 bf16 peak memory; tests/gpu_train.sh: rn50 train /
#            eval / predict on the GPU, resume CPU<->GPU, SIGTERM, fp16 NaN
#   bench    rn50 bench --device cuda, resnet50 batch 256 224 px: bf16 twice
#            (the second run reads the conv algorithm cache the first wrote),
#            fp32 with TF32, fp16
#   peer     tools/torch_peer.py (PyTorch eager bf16, eager fp32, torch.compile
#            bf16; compile is slow and last, bounded by what time is left
#            minus GPU_CHECK_GRAPH_RESERVE)
#   graph    issue 6, after everything above so that a failure there costs
#            none of it: build/tests/test_gpu_graph bf16,fp16 (graph step vs
#            eager step), then rn50 bench --graph 1 in bf16 and fp16 (conv
#            algorithms from the caches the bf16 / fp16 benches wrote)
#   e2e      end to end: rn50 train from packed shards of synthetic 500x375
#            JPEGs, bf16, batch 256, 224 px, every core a loader worker
#   opbench  per-op times at ResNet-50 shapes (test_cuda_ops --bench), if time is left
# GPU_CHECK_ONLY=ops,bench,... runs a subset (machine always runs). Logs go to
# $OUT (9 files: gpu_check.log, summary.txt, test_cuda_ops.log, e2e.log,
# test_gpu_model.log, bench.log, torch_peer.log, torch_peer.json; and
# test_gpu_graph.log); one table is printed last. Exit status 0 only if every
# test passed and every bench ran.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${OUT:-$ROOT/gpu_check_out}
mkdir -p "$OUT"
BUDGET=${GPU_CHECK_BUDGET:-450}
PEER_RESERVE=${GPU_CHECK_PEER_RESERVE:-100} # seconds kept for the peer's eager runs
GRAPH_RESERVE=${GPU_CHECK_GRAPH_RESERVE:-70} # seconds the peer's compile leaves for the graph steps (issue 6)
ONLY=${GPU_CHECK_ONLY:-ops,model,bench,peer,graph,e2e,opbench}
T0=$(date +%s)
LOG=$OUT/gpu_check.log
: >"$LOG"
VENV_SP=/opt/torch/.venv/lib/python3.12/site-packages
PY=/opt/torch/.venv/bin/python
[ -x "$PY" ] || PY=python3
export PYTHONUNBUFFERED=1

say() { echo "$*" | tee -a "$LOG"; }
want() { case ",$ONLY," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
left() { echo $((BUDGET - ($(date +%s) - T0))); }
ROWS=() # "step|status|seconds|result"
row() { ROWS+=("$1|$2|$3|$4"); }
FAILED=0

# step NAME CAP LOGFILE RESERVE CMD...: runs CMD under timeout min(CAP, time
# left - RESERVE), appends its output to LOGFILE, leaves it in $STEP_OUT and
# sets STEP_RC (124/137: timed out; "skip": no time) and STEP_SECS.
STEP_OUT=$(mktemp)
trap 'rm -f "$STEP_OUT"' EXIT
step() {
  local name=$1 cap=$2 logf=$3 reserve=$4
  shift 4
  local rem t s
  rem=$(($(left) - reserve))
  t=$((cap < rem ? cap : rem))
  : >"$STEP_OUT"
  STEP_SECS=0
  if [ "$t" -lt 20 ]; then
    STEP_RC=skip
    say "== $name: skipped, out of time ($(left) s left of the budget)"
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
  tail -n 4 "$STEP_OUT" | sed 's/^/   /' | tee -a "$LOG"
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
else
  say "build/gpu_bundle.tar.xz is absent: run tools/gpu_bundle.sh here and carry it"
fi

# ---- 1. the machine and the libraries ----
GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1)
DRIVER=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -n 1)
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)  host: $(hostname)  kernel: $(uname -r)"
  grep PRETTY_NAME /etc/os-release 2>/dev/null
  echo "cpus: $(nproc)  memory: $(free -g 2>/dev/null | awk '/Mem:/ {print $2 " GiB"}')"
  echo "--- bundle"
  cat build/gpu_bundle.info 2>/dev/null || echo "no build/gpu_bundle.info"
  echo "--- nvidia-smi"
  nvidia-smi
  nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.max.sm,clocks.mem,power.limit,temperature.gpu,driver_version,compute_mode --format=csv
} >>"$LOG" 2>&1
say "GPU: ${GPU:-none found} (driver ${DRIVER:-?})"
row "GPU" "$([ -n "$GPU" ] && echo ok || echo FAIL)" 0 "${GPU:-nvidia-smi found no GPU}, driver ${DRIVER:-?}"

# rn50's library path: PyTorch's cuDNN (and any other NVIDIA wheels), the
# CUDA toolkit; then whatever is still missing, from build/gpu_lib or found
# anywhere on the disk. Only rn50's programs get it (the peer keeps torch's own).
RN50_LD=""
for d in "$VENV_SP/nvidia/cudnn/lib" /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib \
  "$VENV_SP"/nvidia/cu13/lib "$VENV_SP"/nvidia/*/lib; do
  [ -d "$d" ] && case ":$RN50_LD:" in *":$d:"*) ;; *) RN50_LD="${RN50_LD:+$RN50_LD:}$d" ;; esac
done
RTLIB=$ROOT/build/rtlib
mkdir -p "$RTLIB"
BINS=(rn50)
for t in build/tests/test_cuda_* build/tests/test_gpu_*; do [ -x "$t" ] && BINS+=("$t"); done
missing_of() { LD_LIBRARY_PATH=$RN50_LD ldd "$1" 2>&1 | awk '/not found/ {print $1}' | sort -u; }
for pass in 1 2 3; do
  miss=""
  for b in "${BINS[@]}"; do [ -x "$b" ] && miss="$miss $(missing_of "$b")"; done
  miss=$(echo "$miss" | tr ' ' '\n' | sort -u | tr '\n' ' ')
  [ -z "${miss// /}" ] && break
  for lib in $miss; do
    if [ -e "build/gpu_lib/$lib" ]; then
      ln -sf "$ROOT/build/gpu_lib/$lib" "$RTLIB/$lib"
      echo "library: $lib from the bundle (build/gpu_lib)" >>"$LOG"
    else
      f=$(timeout 40 find / -xdev \( -path /proc -o -path /sys -o -path "$ROOT" \) -prune -o -name "$lib" -print 2>/dev/null | head -n 1)
      if [ -n "$f" ]; then
        RN50_LD="$RN50_LD:$(dirname "$f")"
        echo "library: $lib found at $f" >>"$LOG"
      fi
    fi
  done
  case ":$RN50_LD:" in *":$RTLIB:"*) ;; *) RN50_LD="$RN50_LD:$RTLIB" ;; esac
done
missing=""
for b in "${BINS[@]}"; do
  if [ ! -x "$b" ]; then
    missing="$missing $b(absent)"
    continue
  fi
  m=$(missing_of "$b" | tr '\n' ' ')
  [ -n "${m// /}" ] && missing="$missing $b:[${m% }]"
done
{
  echo "--- rn50's LD_LIBRARY_PATH=$RN50_LD"
  LD_LIBRARY_PATH=$RN50_LD ldd rn50 2>&1
} >>"$LOG"
CUDNN_SO=$(LD_LIBRARY_PATH=$RN50_LD ldd rn50 2>/dev/null | awk '/libcudnn\.so/ {print $3}' | head -n 1)
CUDNN_FILE=""
[ -n "$CUDNN_SO" ] && CUDNN_FILE=$(ls "$(dirname "$CUDNN_SO")"/libcudnn.so.9.* 2>/dev/null | head -n 1)
CUDNN_HDR=$(ls "$VENV_SP"/nvidia/cudnn/include/cudnn_version.h /usr/local/cuda/include/cudnn_version.h 2>/dev/null | head -n 1)
CUDNN_V=""
[ -n "$CUDNN_HDR" ] && CUDNN_V=$(awk '/define CUDNN_MAJOR|define CUDNN_MINOR|define CUDNN_PATCHLEVEL/ {printf "%s.", $3}' "$CUDNN_HDR")
say "cuDNN: ${CUDNN_SO:-not found}${CUDNN_FILE:+ ($(basename "$CUDNN_FILE"))}${CUDNN_V:+, header ${CUDNN_V%.} in $CUDNN_HDR}"
CUBLAS_SO=$(LD_LIBRARY_PATH=$RN50_LD ldd rn50 2>/dev/null | awk '/libcublas\.so/ {print $3}' | head -n 1)
say "cuBLAS: ${CUBLAS_SO:-not found}"
row "binaries and libraries" "$([ -z "$missing" ] && echo ok || echo FAIL)" 0 \
  "${missing:-all found; cuDNN ${CUDNN_FILE:+$(basename "$CUDNN_FILE") }from $(dirname "${CUDNN_SO:-?}")}"
[ -n "$missing" ] && say "MISSING: $missing (rn50 cannot start; see $OUT/gpu_check.log)"
RUN=(env LD_LIBRARY_PATH="$RN50_LD")

# ---- 2. tests ----
declare -A TESTRES
TESTORDER=()
test_step() { # test_step NAME CAP LOGFILE CMD...
  local name=$1 cap=$2 logf=$3
  shift 3
  step "$name" "$cap" "$logf" "${TEST_RESERVE:-$PEER_RESERVE}" "$@"
  local res p f detail
  res=$(grep -E '^RESULT [0-9]+ [0-9]+$' "$STEP_OUT" | tail -n 1)
  if [ -n "$res" ]; then
    read -r _ p f <<<"$res"
    detail="$p passed, $f failed"
    [ "$f" -gt 0 ] && detail="$detail: $(grep '^FAIL' "$STEP_OUT" | sed 's/^FAIL *//' | head -n 6 | tr '\n' ';')"
    grep -q '^skipped' "$STEP_OUT" && detail="$detail ($(grep '^skipped' "$STEP_OUT" | head -n 1))"
  else
    p=0 f=1
    detail="no RESULT line: $(grep -v '^ *$' "$STEP_OUT" | tail -n 1 | cut -c1-150)"
  fi
  local st
  st=$(status_of "$STEP_RC")
  if grep -q '^skipped' "$STEP_OUT"; then
    st=skipped
    [ -n "$GPU" ] && FAILED=1 # a GPU is there: a test that skips is a failure
  fi
  [ "$STEP_RC" != 0 ] && FAILED=1
  TESTRES[$name]="$p|$f|$st|$STEP_SECS"
  TESTORDER+=("$name")
  row "$name" "$st" "$STEP_SECS" "$detail"
}
if want ops; then
  test_step test_cuda_ops 150 "$OUT/test_cuda_ops.log" "${RUN[@]}" RN50_CUDA_SYNC=1 RN50_TEST_VERBOSE=1 \
    build/tests/test_cuda_ops
fi
if want model; then
  for t in build/tests/test_gpu_* build/tests/test_cuda_*; do
    [ -x "$t" ] || continue
    [ "$(basename "$t")" = test_cuda_ops ] && continue
    [ "$(basename "$t")" = test_gpu_graph ] && continue # issue 6: in the graph step, after the peer
    test_step "$(basename "$t")" 240 "$OUT/$(basename "$t").log" "${RUN[@]}" RN50_CUDA_SYNC=1 RN50_TEST_CHILD_TIMEOUT=120 "$t"
    grep -E 'worst|rel diff|peak device memory|round trips|^(ok|FAIL) ' "$STEP_OUT" | head -n 60 >>"$LOG"
  done
  # the training system on the GPU: checkpoints CPU<->GPU, eval, predict, signals, fp16 NaN
  test_step gpu_train.sh 150 "$OUT/gpu_train.log" "${RUN[@]}" RN50_BIN=./rn50 bash tests/gpu_train.sh
  grep -E '^(ok|FAIL) ' "$STEP_OUT" >>"$LOG"
fi

# ---- 3. rn50 bench ----
declare -A IMG INF PEAK SHARE CREATE
DEVICE_LINE="" TORCH_LINE=""
CACHE=$ROOT/build/conv_cache_bf16_b256.txt
CACHE16=$ROOT/build/conv_cache_fp16_b256.txt
rm -f "$CACHE" "$CACHE16"
bench() { # bench LABEL CAP VERBOSE rn50-bench-args... (BENCH_RESERVE: seconds to leave, default the peer's)
  local label=$1 cap=$2 verbose=$3
  shift 3
  step "rn50 bench $label" "$cap" "$OUT/bench.log" "${BENCH_RESERVE:-$PEER_RESERVE}" "${RUN[@]}" \
    RN50_CUDA_VERBOSE="$verbose" ./rn50 bench --device cuda "$@"
  local tr inf pk sh cr al
  tr=$(sed -n 's/^train img\/s: *\([0-9.]*\) .*/\1/p' "$STEP_OUT" | tail -n 1)
  inf=$(sed -n 's/.*infer img\/s: *\([0-9.]*\).*/\1/p' "$STEP_OUT" | tail -n 1)
  pk=$(sed -n 's/.*peak GPU memory \([0-9.]*\) GiB in use.*/\1/p' "$STEP_OUT" | tail -n 1)
  sh=$(sed -n "s/.*rn50's share \([0-9.]*\) GiB.*/\1/p" "$STEP_OUT" | tail -n 1)
  al=$(sed -n 's/^bench: peak allocated \([0-9.]*\) GiB.*/\1/p' "$STEP_OUT" | tail -n 1)
  [ -n "$al" ] && sh=$al # rn50's own allocations: what torch.cuda.max_memory_allocated counts
  cr=$(sed -n 's/^bench: model_create \([0-9.]*\) s.*/\1/p' "$STEP_OUT" | tail -n 1)
  IMG[$label]=$tr INF[$label]=$inf PEAK[$label]=$pk SHARE[$label]=$sh CREATE[$label]=$cr
  [ -z "$tr" ] && FAILED=1
  local res
  if [ -n "$tr" ]; then
    res="train $tr img/s, infer $inf img/s, peak ${pk:-?} GiB (rn50 ${sh:-?} GiB), model_create ${cr:-?} s"
    local gl
    gl=$(sed -n 's/^bench: graph step: //p' "$STEP_OUT" | tail -n 1)
    [ -n "$gl" ] && res="$res; graph step $gl"
    case "$gl" in "not used"*) FAILED=1 ;; esac # --graph 1 asked for and not used
  else
    res=$(grep -v '^ *$' "$STEP_OUT" | tail -n 1 | cut -c1-160)
  fi
  row "rn50 bench $label" "$(status_of "$STEP_RC")" "$STEP_SECS" "$res"
}
if want bench; then
  # the first run prints each conv shape's algorithms and times (bench.log)
  # (issue 6: the cached run is there for model_create's time: 20 steps;
  # fp16 writes its conv cache for the fp16 graph bench)
  bench "bf16" 150 1 --precision bf16 --batch-size 256 --steps 50 --cache "$CACHE"
  bench "bf16 cached" 90 0 --precision bf16 --batch-size 256 --steps 20 --cache "$CACHE"
  bench "fp32 tf32" 150 0 --precision fp32 --tf32 1 --batch-size 256 --steps 20
  bench "fp16" 150 0 --precision fp16 --batch-size 256 --steps 40 --cache "$CACHE16"
  DEVICE_LINE=$(grep '^bench: device' "$OUT/bench.log" | head -n 1 | sed 's/^bench: device //')
  say "rn50 sees: ${DEVICE_LINE:-?}"
fi

# ---- 4. the PyTorch peer (same machine, same run), compile last ----
declare -A TIMG TPEAK
if want peer && [ -f tools/torch_peer.py ]; then
  peer_reserve=5
  want graph && peer_reserve=$((5 + GRAPH_RESERVE))
  step "torch peer" 600 "$OUT/torch_peer.log" "$peer_reserve" env OUT="$OUT" "$PY" -c '
import runpy, sys, torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version(), flush=True)
sys.argv = ["tools/torch_peer.py"]
runpy.run_path("tools/torch_peer.py", run_name="__main__")'
  TORCH_LINE=$(grep '^torch ' "$STEP_OUT" | head -n 1)
  say "peer: ${TORCH_LINE:-?}"
  while read -r line; do
    mode=$(echo "$line" | sed -n 's/.*"mode": *"\([a-z]*\)".*/\1/p')
    dt=$(echo "$line" | sed -n 's/.*"dtype": *"\([^"]*\)".*/\1/p')
    ims=$(echo "$line" | sed -n 's/.*"img_s": *\([0-9.]*\).*/\1/p')
    pk=$(echo "$line" | sed -n 's/.*"peak_gib": *\([0-9.]*\).*/\1/p')
    [ -z "$ims" ] && continue
    case "$mode/$dt" in
      eager/torch.bfloat16) k="eager bf16" ;;
      eager/None) k="eager fp32" ;;
      compile/*) k="compile bf16" ;;
      *) k="$mode $dt" ;;
    esac
    TIMG[$k]=$ims TPEAK[$k]=$pk
    row "torch $k" ok - "$(printf '%.1f img/s, peak %.2f GiB' "$ims" "${pk:-0}")"
  done < <(grep '^{' "$STEP_OUT")
  [ "$STEP_RC" != 0 ] && row "torch peer" "$(status_of "$STEP_RC")" "$STEP_SECS" \
    "$([ "$STEP_RC" = 124 ] && echo "stopped at the time budget (modes done: ${!TIMG[*]})" || grep -v '^ *$' "$STEP_OUT" | tail -n 1 | cut -c1-160)"
fi

# ---- 5. issue 6: the graph step (last of the checks, so that a failure here costs nothing above) ----
if want graph; then
  if [ -x build/tests/test_gpu_graph ]; then
    TEST_RESERVE=0 test_step test_gpu_graph 100 "$OUT/test_gpu_graph.log" "${RUN[@]}" RN50_CUDA_SYNC=1 \
      RN50_TEST_CHILD_TIMEOUT=80 build/tests/test_gpu_graph bf16,fp16
    grep -E 'graph steps:|differ by|relative L2|end\(\) =|^(ok|FAIL) ' "$STEP_OUT" | head -n 40 >>"$LOG"
  fi
  BENCH_RESERVE=0
  bench "bf16 graph" 60 0 --precision bf16 --batch-size 256 --steps 40 --cache "$CACHE" --graph 1
  bench "fp16 graph" 60 0 --precision fp16 --batch-size 256 --steps 40 --cache "$CACHE16" --graph 1
  unset BENCH_RESERVE
fi

# ---- 5b. end to end: the real loader from packed shards, all cores ----
# synthetic ImageNet-sized JPEGs (varied around 500x375), packed, then a bf16
# training run at batch 256, 224 px: img/s and the share of time spent waiting
# for data (median over the steps after the first 5)
if want e2e; then
  E2E=$(mktemp -d /tmp/rn50-e2e-XXXXXX)
  step "e2e dataset" 120 "$OUT/e2e.log" 0 "${RUN[@]}" sh -c "./rn50 synth --out $E2E/raw --classes 100 --per-class 128 \
    --val-per-class 2 && ./rn50 pack --data $E2E/raw --out $E2E/packed"
  if [ "$STEP_RC" = 0 ]; then
    step "rn50 train e2e bf16" 120 "$OUT/e2e.log" 0 "${RUN[@]}" ./rn50 train --data "$E2E/packed" --out "$E2E/run" \
      --device cuda --precision bf16 --batch-size 256 --image-size 224 --epochs 1 --max-steps 50 --log-every 1 \
      --workers "$(nproc)"
    e2e_res=$("$PY" -c '
import json, sys
st = [r for r in map(json.loads, open(sys.argv[1])) if r.get("type") == "step"][5:]
med = lambda v: sorted(v)[len(v) // 2]
if st:
    print("%.0f img/s, data wait %.1f%% (median of %d steps)" % (med([r["img_s"] for r in st]),
          100 * med([r["data_wait"] for r in st]), len(st)))' "$E2E/run/metrics.jsonl" 2>/dev/null)
    [ -z "$e2e_res" ] && FAILED=1
    row "rn50 train e2e bf16 (packed, $(nproc) workers)" "$(status_of "$STEP_RC")" "$STEP_SECS" "${e2e_res:-no step figures}"
  else
    row "e2e dataset" "$(status_of "$STEP_RC")" "$STEP_SECS" "$(tail -n 1 "$STEP_OUT" | cut -c1-160)"
  fi
  rm -rf "$E2E"
fi

# ---- 6. per-op times, if time is left ----
if want opbench; then
  step "op micro-bench bf16" 60 "$OUT/bench.log" 0 "${RUN[@]}" build/tests/test_cuda_ops --bench bf16 256
  [ "$STEP_RC" != skip ] && row "op micro-bench bf16 (sum of ops)" "$(status_of "$STEP_RC")" "$STEP_SECS" \
    "$(grep '^per step' "$STEP_OUT" | sed 's/^per step (sum over ResNet-50.s ops): //' | tail -n 1)"
fi
nvidia-smi --query-gpu=clocks.sm,clocks.max.sm,temperature.gpu,power.draw,clocks_throttle_reasons.active \
  --format=csv >>"$LOG" 2>&1

# ---- summary ----
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.3f", a / b; else printf "-" }'; }
num() { [ -n "$1" ] && printf '%.1f' "$1" || printf -- '-'; }
num2() { [ -n "$1" ] && printf '%.2f' "$1" || printf -- '-'; }
{
  echo
  echo "rn50 GPU check: ${GPU:-no GPU}, driver ${DRIVER:-?}, $(date -u +%Y-%m-%d), $(($(date +%s) - T0)) s"
  echo "rn50: ${DEVICE_LINE:-no bench ran}; cuDNN from ${CUDNN_SO:-?}"
  echo "peer: ${TORCH_LINE:-did not run}"
  echo
  printf '%-18s %7s %7s  %-9s %5s\n' tests passed failed status secs
  for t in "${TESTORDER[@]}"; do
    IFS='|' read -r p f st s <<<"${TESTRES[$t]}"
    printf '%-18s %7s %7s  %-9s %5s\n' "$t" "$p" "$f" "$st" "$s"
  done
  echo
  echo "train step, resnet50, batch 256, 224 px, random data on the device (img/s); peak GiB: rn50 = peak of the"
  echo "buffers it allocated (weights, activations, workspaces), torch = torch.cuda.max_memory_allocated"
  printf '%-12s %10s %9s %12s %11s %9s %9s\n' precision "rn50 img/s" "rn50 GiB" "torch img/s" "torch GiB" "img/s x" "GiB x"
  for p in "bf16|bf16|eager bf16" "bf16 cached|bf16 (cache)|eager bf16" "fp32 tf32|fp32 (tf32)|eager fp32" \
    "fp16|fp16|" "bf16|bf16/compile|compile bf16" "bf16 graph|bf16 graph|eager bf16" \
    "bf16 graph|bf16 g/comp|compile bf16" "fp16 graph|fp16 g/comp|compile bf16"; do
    IFS='|' read -r lab name peer <<<"$p"
    ti="" tp=""
    [ -n "$peer" ] && ti=${TIMG[$peer]:-} tp=${TPEAK[$peer]:-}
    printf '%-12s %10s %9s %12s %11s %9s %9s\n' "$name" "$(num "${IMG[$lab]:-}")" "$(num2 "${SHARE[$lab]:-}")" \
      "$(num "$ti")" "$(num2 "$tp")" "$(ratio "${IMG[$lab]:-}" "$ti")" "$(ratio "${SHARE[$lab]:-}" "$tp")"
  done
  echo "(img/s x = rn50 / torch, want >= 1; GiB x = rn50 / torch, want <= 1; rn50 peak incl. context:" \
    "bf16 $(num2 "${PEAK[bf16]:-}") GiB, must stay < 22 for an A10G)"
  echo "conv algorithm search: model_create $(num2 "${CREATE[bf16]:-}") s without the cache," \
    "$(num2 "${CREATE[bf16 cached]:-}") s with it (bf16)"
  echo "issue 6: 'graph' rows = rn50 bench --graph 1 (step replayed as one CUDA graph); g/comp = against" \
    "torch.compile bf16 (goal: >= 1.3)"
  echo
  printf '%-40s %-10s %5s  %s\n' step status secs result
  for r in "${ROWS[@]}"; do
    IFS='|' read -r a b c d <<<"$r"
    printf '%-40s %-10s %5s  %s\n' "$a" "$b" "$c" "$d"
  done
} | tee "$OUT/summary.txt" | tee -a "$LOG"
exit $FAILED
