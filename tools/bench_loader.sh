#!/usr/bin/env bash
# bench_loader.sh: rn50's input pipeline against the torchvision DataLoader
# (../shared/peers/loader_peer.py) on the same JPEG files with the same number
# of cores, in one run: the train transform (RandomResizedCrop 224 + flip,
# batch 256) from the raw ImageFolder tree and from packed shards.
#
# usage: tools/bench_loader.sh [N_IMAGES] [REPEATS]
#   env: RN50_BIN   the rn50 binary (default ./rn50; it runs "RN50_BIN bench --loader")
#        WORKERS    decode workers for both (default: all cores)
#        DATA       where the files go (default /tmp/rn50-bench-loader; kept for reruns)
#        PEER       the peer script (default ../shared/peers/loader_peer.py, else /work/shared/peers/...)
#        MAX_SIDE   rn50 pack --max-side (default 500: the peer's 500x375 files are copied as they are)
# The files are the peer's own (loader_peer.py --make: 500x375 q90 JPEGs, 100
# classes). Each repeat runs rn50 raw, the peer, rn50 packed; the summary
# prints medians and ratios. Figures go to docs/PERF.md ("Loader").
set -eu
N=${1:-4096}
R=${2:-3}
RN50=${RN50_BIN:-./rn50}
W=${WORKERS:-$(nproc)}
D=${DATA:-/tmp/rn50-bench-loader}
MAX_SIDE=${MAX_SIDE:-500}
PEER=${PEER:-}
PY=/usr/bin/python3
if [ -z "$PEER" ]; then
  for p in ../shared/peers/loader_peer.py /work/shared/peers/loader_peer.py; do [ -f "$p" ] && PEER=$p && break; done
fi
[ -f "$PEER" ] || { echo "bench_loader: loader_peer.py not found (set PEER)"; exit 1; }
if ! "$RN50" bench --loader --data /nonexistent-rn50 2>&1 | grep -q "no such directory"; then
  echo "bench_loader: '$RN50 bench --loader' is not available"; exit 1
fi

if [ ! -f "$D/raw/.done-$N" ]; then
  rm -rf "$D/raw" "$D/packed"
  echo "making $N peer images in $D/raw/train ..."
  "$PY" "$PEER" --make "$D/raw/train" "$N"
  touch "$D/raw/.done-$N"
fi
if [ ! -f "$D/packed/rn50pack.idx" ]; then
  echo "packing (max side $MAX_SIDE) ..."
  "$RN50" pack --data "$D/raw" --out "$D/packed" --max-side "$MAX_SIDE" --workers "$W" 2>&1 | tail -1
fi
# the index, as a user would have it after 'rn50 prepare'
export RN50_CACHE="$D/cache"
RN50_QUIET=1 "$RN50" prepare --data "$D/raw" --workers "$W" >/dev/null

cores=$(nproc)
cpu=$(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
echo "machine: $cores cores ($cpu), $(free -g | awk '/Mem:/{print $2}') GiB; workers $W; $N images of 500x375 q90; $R repeats"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
raw=(); peer=(); packed=()
for r in $(seq 1 "$R"); do
  a=$("$RN50" bench --loader --data "$D/raw" --workers "$W" 2>/dev/null | awk '/^loader img\/s:/{print $3}')
  b=$("$PY" "$PEER" "$D/raw/train" "$W" 2>/dev/null | awk '{print $(NF-1)}')
  c=$("$RN50" bench --loader --data "$D/packed" --workers "$W" 2>/dev/null | awk '/^loader img\/s:/{print $3}')
  echo "repeat $r: rn50 raw $a img/s, torchvision DataLoader $b img/s, rn50 packed $c img/s"
  raw+=("$a"); peer+=("$b"); packed+=("$c")
done
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
mr=$(median "${raw[@]}"); mp=$(median "${peer[@]}"); mk=$(median "${packed[@]}")
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "median: rn50 raw $mr img/s, torchvision $mp img/s, rn50 packed $mk img/s"
awk -v r="$mr" -v p="$mp" -v k="$mk" -v w="$W" 'BEGIN {
  printf "ratio raw/torchvision: %.2fx (goal 4x); packed/torchvision: %.2fx; packed per core: %.0f img/s (goal 600)\n",
    r / p, k / p, k / w }'
