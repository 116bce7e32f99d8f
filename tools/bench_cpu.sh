#!/usr/bin/env bash
# bench_cpu.sh: rn50's CPU training step and inference for resnet50 against
# PyTorch's (../shared/peers/cpu_peer.py: torchvision ResNet-50, SGD Nesterov,
# label smoothing, fp32) on the same machine with the same threads, in one
# run: batch 16 at 224 px and batch 32 at 64 px. Runs are interleaved (rn50,
# torch, rn50, torch, ...) so both see the same load; the summary prints
# medians and ratios. `make bench` runs it. Figures go to docs/PERF.md
# ("CPU training step").
#
# usage: tools/bench_cpu.sh [REPEATS]            (default 3)
#   env: RN50_BIN  the rn50 binary (default ./rn50)
#        PEER      the peer script (default ../shared/peers/cpu_peer.py, else /work/shared/peers/...)
#        THREADS   threads for both (default: all cores)
#        STEPS     timed training steps of rn50 (default 5, as the peer)
#        CONFIGS   "BATCH:SIZE ..." (default "16:224 32:64")
set -eu
R=${1:-3}
RN50=${RN50_BIN:-./rn50}
T=${THREADS:-$(nproc)}
STEPS=${STEPS:-5}
CONFIGS=${CONFIGS:-"16:224 32:64"}
PEER=${PEER:-}
PY=/usr/bin/python3
if [ -z "$PEER" ]; then
  for p in ../shared/peers/cpu_peer.py /work/shared/peers/cpu_peer.py; do [ -f "$p" ] && PEER=$p && break; done
fi
[ -f "$PEER" ] || { echo "bench_cpu: cpu_peer.py not found (set PEER)"; exit 1; }
[ -x "$RN50" ] || { echo "bench_cpu: $RN50 not found (run make)"; exit 1; }

load() { cut -d' ' -f1-3 /proc/loadavg; }
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }'; }

cpu=$(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
echo "machine: $(nproc) cores ($cpu), $(free -g | awk '/Mem:/{print $2}') GiB; $T threads each; $R repeats"
echo "torch: $($PY -c 'import torch; print(torch.__version__)' 2>/dev/null); rn50: $RN50, $STEPS timed steps"
echo "load before: $(load)"
summary=()
for cfg in $CONFIGS; do
  b=${cfg%%:*}
  s=${cfg##*:}
  rt=(); ri=(); pt=(); pi=()
  for r in $(seq 1 "$R"); do
    l0=$(load)
    out=$("$RN50" bench --arch resnet50 --batch-size "$b" --image-size "$s" --steps "$STEPS" --threads "$T" 2>/dev/null |
      awk '/^train img\/s:/{print $3, $6}')
    read -r a ai <<<"$out"
    l1=$(load)
    out=$("$PY" "$PEER" "$b" "$s" "$T" 2>/dev/null | awk '/train/{t=$(NF-1)} /inference/{i=$(NF-1)} END{print t, i}')
    read -r p pinf <<<"$out"
    echo "batch $b, $s px, repeat $r: rn50 train $a img/s, infer $ai img/s (load $l0) | torch train $p img/s, infer $pinf img/s (load $l1)"
    rt+=("$a"); ri+=("$ai"); pt+=("$p"); pi+=("$pinf")
  done
  mrt=$(median "${rt[@]}"); mri=$(median "${ri[@]}"); mpt=$(median "${pt[@]}"); mpi=$(median "${pi[@]}")
  summary+=("$(printf '| %-16s | %10s | %11s | %6s | %10s | %11s | %6s |' "batch $b, $s px" "$mrt" "$mpt" \
    "$(ratio "$mrt" "$mpt")" "$mri" "$mpi" "$(ratio "$mri" "$mpi")")")
done
echo "load after: $(load)"
echo
echo "medians (img/s):"
echo "| config           | rn50 train | torch train | ratio  | rn50 infer | torch infer | ratio  |"
echo "| ---------------- | ---------- | ----------- | ------ | ---------- | ----------- | ------ |"
printf '%s\n' "${summary[@]}"
