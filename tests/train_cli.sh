#!/usr/bin/env bash
# train_cli.sh: what a user sees of a training run (config.json, train.log,
# metrics.jsonl, summary.csv, plot.html, TensorBoard events, weights that
# torchvision loads), eval and predict on its weights, and clear errors with
# non-zero exits for bad input.
source tests/lib/train_common.sh

train --out A > A.log 2>&1
check "config.json is valid and resolved" "$PY -c 'import json; c=json.load(open(\"A/config.json\")); assert c[\"arch\"]==\"resnet18\" and c[\"classes\"]==4 and c[\"epochs\"]==2'"
check "train.log has step lines with loss, lr, img/s, data share and ETA" "grep -Eq 'epoch 2/2 step [0-9]+/8 loss [0-9.]+ lr [0-9.e-]+ [0-9.]+ img/s data [0-9]+% eta' A/train.log"
check "train.log has a val line per epoch" "[ \$(grep -c ' val: loss' A/train.log) -eq 2 ]"
check "plain lines (no progress bar) when stdout is not a terminal" "! grep -q \$'\\r' A.log"
check "metrics.jsonl: every line JSON, step and epoch records" "$PY - <<'PY'
import json
rows = [json.loads(l) for l in open('A/metrics.jsonl')]
steps = [r for r in rows if r['type'] == 'step']; epochs = [r for r in rows if r['type'] == 'epoch']
assert len(epochs) == 2 and steps[-1]['step'] == 16, (len(epochs), steps[-1])
assert all(0 <= e['top1'] <= 100 for e in epochs)
PY"
check "summary.csv as timm writes it (header + a row per epoch)" "[ \"\$(head -n 1 A/summary.csv | tr -d '\r')\" = 'epoch,train_loss,eval_loss,eval_top1,eval_top5,lr' ] && [ \$(wc -l < A/summary.csv) -eq 3 ]"
check "plot.html is a self-contained SVG page" "grep -q '<svg' A/plot.html && ! grep -q '<script' A/plot.html"
check "TensorBoard events: train/loss, train/lr, val/top1, val/top5" "$PY $REPO/tools/tfevents_read.py dump A/tb/events.out.tfevents.* > tb.txt 2>&1 && grep -q train/loss tb.txt && grep -q train/lr tb.txt && grep -q val/top1 tb.txt && grep -q val/top5 tb.txt"
check "torchvision loads model.safetensors and model_best.safetensors (strict)" "$PY - <<'PY'
import sys; sys.path.insert(0, '$REPO/tools')
import safetensors_py, torchvision
for f in ('A/model.safetensors', 'A/model_best.safetensors'):
    sd, meta = safetensors_py.load(f)
    m = torchvision.models.resnet18(num_classes=4); m.load_state_dict(sd, strict=True)
PY"
final=$(grep ' val: loss' A/train.log | tail -n 1 | sed -E 's/.*top-1 ([0-9.]+)%.*/\1/')
"$BIN" eval --data data --weights A/model.safetensors --val-resize 36 --val-crop 32 --threads 2 > eval.txt 2>&1
check "rn50 eval reproduces the run's last val top-1 ($final%)" "grep -q \"top-1 $final%\" eval.txt"
img=$(ls data/val/*/* | head -n 1)
"$BIN" predict --weights A/model.safetensors --resize 36 --crop 32 "$img" > pred.txt 2>&1
check "rn50 predict prints the top classes with probabilities and names" "[ \$(grep -cE '^ +[0-9.]+%  +[0-9]+  n[0-9]{8}' pred.txt) -eq 4 ]"
"$BIN" predict --weights A/model.safetensors --names data/LOC_synset_mapping.txt --resize 36 --crop 32 "$img" > pred2.txt 2>&1
check "rn50 predict --names uses LOC_synset_mapping.txt" "grep -qE '^ +[0-9.]+%  +[0-9]+  n[0-9]{8} ' pred2.txt"

# bad input: clear message, non-zero exit, never a crash
expect() { # name, expected rc, pattern, command...
  local name=$1 want=$2 pat=$3; shift 3
  "$@" > out.txt 2>&1; local rc=$?
  if [ $rc -eq "$want" ] && grep -qiE -- "$pat" out.txt; then ok "$name"; else bad "$name (rc=$rc, want $want; output: $(head -c 300 out.txt))"; fi
}
expect "missing --data" 2 "--data ROOT is required" "$BIN" train --out X
expect "missing data directory" 1 "nonexistent" "$BIN" train --data /nonexistent/imagenet --out X
expect "bad --lr" 2 "--lr must be" "$BIN" train --data data --out X --lr abc
expect "bad --epochs" 2 "--epochs must be" "$BIN" train --data data --out X --epochs 0
expect "bad --batch-size" 2 "--batch-size must be" "$BIN" train --data data --out X --batch-size -3
expect "bf16 on the CPU" 2 "needs --device cuda" "$BIN" train --data data --out X --precision bf16
expect "unknown device" 2 "unknown --device" "$BIN" train --data data --out X --device tpu
expect "unknown recipe" 2 "unknown --recipe" "$BIN" train --data data --out X --recipe slow
expect "unknown arch" 2 "unknown --arch" "$BIN" train --data data --out X --arch resnet42
expect "val crop larger than resize" 2 "cannot exceed" "$BIN" train --data data --out X --val-crop 300 --val-resize 256
expect "unknown option" 2 "unknown option" "$BIN" train --data data --out X --lerning-rate 0.1
expect "a RUN of another arch" 1 "holds a resnet18 run" "$BIN" train $OPTS --arch resnet34 --out A
expect "changed result-affecting option refused" 1 "--lr: 0.05 in the run, 0.1 now" "$BIN" train $OPTS --out A --lr 0.1
expect "--force continues anyway" 0 "done" "$BIN" train $OPTS --out A --lr 0.1 --force
expect "eval without weights" 2 "required" "$BIN" eval --data data
expect "eval of a missing weights file" 1 "nope.safetensors" "$BIN" eval --data data --weights nope.safetensors
expect "predict of a non-image" 1 "A/config.json" "$BIN" predict --weights A/model.safetensors A/config.json
finish
