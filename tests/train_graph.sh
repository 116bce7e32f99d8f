#!/usr/bin/env bash
# train_graph.sh: rn50 train --graph 1 (issue 6) gives the eager run's result
# bit for bit. Without a GPU the CPU backend emulates graph capture
# (RN50_GRAPH_EMULATE=1, src/cpu/graph_emu.c: captured calls keep their
# arguments, launches replay them), which runs the trainer's graph branch:
# the next batch loaded while a step runs, skip decisions on the device, a
# new graph when progressive resizing changes the crop, EMA, a forced NaN
# step, resume mid-epoch. A capture that fails, a backend without graphs and
# --accum-steps 2 fall back to eager steps with a message.
source tests/lib/train_common.sh
G="--data data --arch resnet18 --epochs 2 --batch-size 8 --min-res 32 --max-res 48 --start-ramp 0 --end-ramp 1 --val-resize 36 --val-crop 32 --lr 0.02 --ema-decay 0.9 --log-every 4 --ckpt-steps 5 --threads 2 --workers 2"
vals() { grep -E ' val( \(EMA weights\))?: ' "$1/train.log" | sed -E 's/^[0-9-]+ [0-9:]+ //; s/\([0-9]+ images, [0-9.]+ s\)//'; }
same_as_A() { cmp -s A/model.safetensors "$1/model.safetensors" && cmp -s A/checkpoints/step-000000016/model.safetensors "$1/checkpoints/step-000000016/model.safetensors" && [ "$(vals A)" = "$(vals "$1")" ]; }

RN50_TEST_NAN_AT=3 "$BIN" train $G --out A > A.log 2>&1
check "eager run finishes" "[ -f A/model.safetensors ]"

# stopped mid-epoch (with the next batch prefetched), then resumed
RN50_GRAPH_EMULATE=1 RN50_TEST_NAN_AT=3 "$BIN" train $G --out B --graph 1 --max-steps 6 > B.log 2>&1
RN50_GRAPH_EMULATE=1 RN50_TEST_NAN_AT=3 "$BIN" train $G --out B --graph 1 >> B.log 2>&1
check "graph run finishes (stopped at step 6 and resumed)" "[ -f B/model.safetensors ] && grep -q resuming B/train.log"
check "it took graph steps: one uncaptured and one capture per crop and session, the rest replays" "grep -q 'graph steps: 1 uncaptured (first of a shape), 1 captured, 5 replays; 0 fell back' B/train.log && grep -q 'graph steps: 2 uncaptured (first of a shape), 2 captured, 8 replays; 0 fell back' B/train.log"
check "the forced non-finite step is reported and skipped" "grep -q 'non-finite loss at step 3' B/train.log"
check "weights, last checkpoint and val / EMA val lines equal the eager run's" "same_as_A B"

RN50_GRAPH_EMULATE=fail RN50_TEST_NAN_AT=3 "$BIN" train $G --out C --graph 1 > C.log 2>&1
check "a failing capture is reported and eager steps take over" "grep -q 'graph step off (capture failed' C/train.log && grep -q 'eager steps from here' C/train.log"
check "and the result still equals the eager run's" "same_as_A C"

"$BIN" train $G --out D --graph 1 --max-steps 2 > D.log 2>&1
check "--graph 1 on a backend without graphs: says so, runs eager steps" "[ -f D/checkpoints/step-000000002/model.safetensors ] && grep -q -- '--graph 1: the cpu backend cannot capture graphs; eager steps' D/train.log"
RN50_GRAPH_EMULATE=1 "$BIN" train $G --out F --graph 1 --accum-steps 2 --max-steps 1 > F.log 2>&1
check "--graph 1 with --accum-steps 2: says so, runs eager steps" "[ -d F/checkpoints/step-000000001 ] && grep -q -- '--graph 1: needs --accum-steps 1; eager steps' F/train.log"
finish
