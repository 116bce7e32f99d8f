#!/usr/bin/env bash
# train_resume.sh: a run killed (SIGKILL at random moments, SIGTERM, SIGINT)
# and restarted with the same command ends with weights bit for bit equal to
# the uninterrupted run's; a corrupt newest checkpoint falls back to the
# previous one; non-finite losses are skipped and too many stop the run.
source tests/lib/train_common.sh

train --out A > A.log 2>&1
check "uninterrupted run finishes" "[ -f A/model.safetensors ]"

# SIGKILL at random moments until the run completes: up to 12 kills, each
# after a random delay that grows with the attempt so a slow machine still
# makes progress; then the run is left to finish
LOGF=B.log; kills=0
for i in $(seq 1 13); do
  train_bg --out B
  if [ "$i" -eq 13 ]; then wait "$pid"; break; fi
  sleep "$($PY -c "import random; print(random.uniform(0.5, 2.0) + 0.25 * $i)")"
  if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; wait "$pid" 2>/dev/null; kills=$((kills + 1)); else wait "$pid"; break; fi
done
echo "  killed $kills times"
check "SIGKILLed run ($kills kills) ends bit-identical to the uninterrupted one" "cmp -s A/model.safetensors B/model.safetensors"
check "its summary.csv equals the uninterrupted one" "cmp -s A/summary.csv B/summary.csv"
check "it resumed from checkpoints" "[ \$(grep -c resuming B/train.log) -ge 1 ] || [ $kills -eq 0 ]"

# SIGTERM: finish the step, checkpoint, exit 0 within seconds
LOGF=C.log
train_bg --out C
for i in $(seq 1 100); do [ -d C/checkpoints ] && break; sleep 0.1; done
sleep 1
t0=$(date +%s.%N); kill -TERM "$pid"; wait "$pid"; rc=$?; t1=$(date +%s.%N)
check "SIGTERM exits 0 (rc=$rc)" "[ $rc -eq 0 ]"
check "SIGTERM exits within 10 s" "$PY -c 'import sys; sys.exit(0 if $t1 - $t0 < 10 else 1)'"
check "SIGTERM writes a checkpoint" "grep -q 'checkpoint .*(signal' C/train.log"
train --out C >> C.log 2>&1
check "resumed after SIGTERM: bit-identical" "cmp -s A/model.safetensors C/model.safetensors"

# SIGINT once behaves like SIGTERM; twice exits at once
LOGF=D.log
train_bg --out D
for i in $(seq 1 100); do [ -d D/checkpoints ] && break; sleep 0.1; done
kill -INT "$pid"; sleep 0.05; kill -INT "$pid"; wait "$pid"; rc=$?
check "a second SIGINT exits at once (rc=$rc)" "[ $rc -eq 130 ] || [ $rc -eq 0 ]"
train --out D >> D.log 2>&1
check "and the run still completes identically" "cmp -s A/model.safetensors D/model.safetensors"

# corrupt newest checkpoint: warning, previous one used, same result
train --out E --max-steps 5 > E.log 2>&1
newest=$(ls -d E/checkpoints/step-* | sort | tail -n 1)
head -c 1000 "$newest/model.safetensors" > "$newest/m" && mv "$newest/m" "$newest/model.safetensors"
train --out E >> E.log 2>&1
check "a truncated newest checkpoint is reported" "grep -q 'unreadable' E.log"
check "and the previous one is used" "grep -q 'resuming from .*step-000000004' E/train.log"
check "the result is unchanged" "cmp -s A/model.safetensors E/model.safetensors"

# NaN: one non-finite loss is skipped; nan-limit in a row stop the run
RN50_TEST_NAN_AT=3 train --out F > F.log 2>&1; rc=$?
check "one non-finite loss: run completes (rc=$rc)" "[ $rc -eq 0 ] && grep -q 'non-finite loss at step 3' F/train.log"
RN50_TEST_NAN_AT=2,3,4 train --out G --nan-limit 3 > G.log 2>&1; rc=$?
check "3 non-finite losses in a row with --nan-limit 3 stop the run (rc=$rc)" "[ $rc -eq 3 ] && grep -q 'stopping: 3 non-finite' G/train.log"
newest=$(ls -d G/checkpoints/step-* | sort | tail -n 1)
"$BIN" eval --data data --weights "$newest/model.safetensors" --val-resize 36 --val-crop 32 > G.eval 2>&1
check "the last checkpoint is intact (rn50 eval reads it, finite loss)" "grep -q 'top-1' G.eval && ! grep -qi 'nan' G.eval"
finish
