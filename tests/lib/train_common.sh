# train_common.sh: shared by the tests/train_*.sh scripts (sourced).
# A tiny dataset and a fast training configuration (resnet18 at 32 px,
# 16 optimizer steps over 2 epochs), plus check/result helpers.
set -u
BIN=${RN50_BIN:-./rn50}
case "$BIN" in /*) ;; *) BIN="$PWD/$BIN" ;; esac
REPO=$PWD
PY=/usr/bin/python3
pass=0; fail=0
ok()  { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }
check() { if eval "$2"; then ok "$1"; else bad "$1"; fi; }
finish() { echo "RESULT $pass $fail"; [ "$fail" -eq 0 ]; }
WORK=$(mktemp -d /tmp/rn50-train-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
"$BIN" synth --out data --classes 4 --per-class 16 --val-per-class 4 --size 64x48 >/dev/null 2>&1 || { echo "synth failed"; echo "RESULT 0 1"; exit 1; }
OPTS="--data data --arch resnet18 --epochs 2 --batch-size 8 --image-size 32 --val-resize 36 --val-crop 32 --lr 0.05 --log-every 2 --ckpt-steps 1 --threads 2 --workers 2"
train() { "$BIN" train $OPTS "$@"; }
# run a training command in the background, return its pid in $pid
train_bg() { "$BIN" train $OPTS "$@" >>"$LOGF" 2>&1 & pid=$!; }
