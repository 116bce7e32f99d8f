#!/usr/bin/env bash
# train_torch.sh: rn50's training loop against PyTorch's (tools/torch_train_ref.py):
# same initial weights, same batches (rn50's loader output, dumped), same
# recipe (cosine schedule with warm-up, Nesterov momentum, weight decay not on
# BN/biases, label smoothing 0.1, 2 accumulated micro-batches per step), fp32
# on the CPU, 48 optimizer steps: loss curves and final weights compared.
set -u
BIN=${RN50_BIN:-./rn50}
case "$BIN" in /*) ;; *) BIN="$PWD/$BIN" ;; esac
REPO=$PWD
WORK=$(mktemp -d /tmp/rn50-torch-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
"$BIN" synth --out data --classes 4 --per-class 50 --val-per-class 4 --size 64x48 >/dev/null 2>&1 || { echo "RESULT 0 1"; exit 1; }
/usr/bin/python3 "$REPO/tools/torch_train_ref.py" init resnet18 4 init.safetensors || { echo "RESULT 0 1"; exit 1; }
RN50_DUMP_BATCHES=batches.bin "$BIN" train --data data --out run --arch resnet18 --init-weights init.safetensors \
  --epochs 4 --batch-size 8 --accum-steps 2 --image-size 32 --val-resize 36 --val-crop 32 --lr 0.05 \
  --schedule cosine --warmup-epochs 0.5 --label-smoothing 0.1 --wd 5e-4 --wd-bn 0 --nesterov 1 --momentum 0.9 \
  --log-every 1 --threads 2 --workers 2 > train.log 2>&1 || { tail -5 train.log; echo "RESULT 0 1"; exit 1; }
/usr/bin/python3 "$REPO/tools/torch_train_ref.py" compare resnet18 4 init.safetensors batches.bin run \
  --accum 2 --wd 5e-4 --wd-bn 0 --momentum 0.9 --nesterov 1 --smoothing 0.1 --lr 0.05 --warmup 0.5 --epochs 4
