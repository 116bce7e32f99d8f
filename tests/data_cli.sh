#!/usr/bin/env bash
# data_cli.sh: the data commands as users run them — rn50 synth (both
# layouts), rn50 prepare (report, bad files found, ROOT left unchanged),
# rn50 pack (killed with SIGKILL mid-way, then resumed: the shards equal an
# uninterrupted pack's), and the errors a user meets (missing or unreadable
# ROOT, a file as ROOT, unknown layout, empty class, bad options).
# Usage: bash tests/data_cli.sh BUILD_DIR   (env RN50_BIN, default ./rn50)
set -u
RN50=${RN50_BIN:-./rn50}
T=$(mktemp -d /tmp/rn50-datacli-XXXXXX)
trap 'rm -rf "$T"' EXIT
export RN50_CACHE="$T/cache"
pass=0; fail=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }
check() { local name=$1; shift; if "$@"; then ok "$name"; else bad "$name"; fi; }
# expect STATUS PATTERN NAME -- CMD...: exit status and a message on stderr/stdout
expect() {
  local want=$1 pat=$2 name=$3; shift 4
  local out rc
  out=$("$@" 2>&1); rc=$?
  if [ "$rc" -eq "$want" ] && grep -q -- "$pat" <<<"$out"; then ok "$name"
  else bad "$name (exit $rc, wanted $want; output: $(head -c 400 <<<"$out"))"; fi
}
tree_sum() { (cd "$1" && find . -printf '%p %s %T@\n' | sort | md5sum); }

# --- synth, both layouts
expect 0 "3 classes" "synth folder layout" -- $RN50 synth --out "$T/a" --classes 3 --per-class 6 --val-per-class 2 --size 64x48
check "folder files" test -f "$T/a/train/n00000002/n00000002_5.JPEG" -a -f "$T/a/val/n00000001/ILSVRC2012_val_00000002.JPEG"
expect 0 "3 classes" "synth kaggle layout" -- $RN50 synth --out "$T/b" --classes 3 --per-class 6 --val-per-class 2 --size 64x48 --layout kaggle
check "kaggle files" test -f "$T/b/ILSVRC/Data/CLS-LOC/val/ILSVRC2012_val_00000006.JPEG" -a -f "$T/b/LOC_val_solution.csv"
check "same pixels in both layouts" cmp -s "$T/a/train/n00000001/n00000001_3.JPEG" "$T/b/ILSVRC/Data/CLS-LOC/train/n00000001/n00000001_3.JPEG"
expect 2 "WxH" "synth rejects a bad --size" -- $RN50 synth --out "$T/x" --classes 2 --per-class 1 --size 64by48
expect 2 "--classes" "synth needs --classes" -- $RN50 synth --out "$T/x" --per-class 1

# --- prepare: layouts, counts, bad files, nothing changed in ROOT
expect 0 "ImageFolder layout" "prepare folder" -- $RN50 prepare --data "$T/a"
expect 0 "Kaggle" "prepare kaggle" -- $RN50 prepare --data "$T/b"
out=$($RN50 prepare --data "$T/b" 2>/dev/null)
check "prepare counts train" grep -q "train  18 images in 3 classes" <<<"$out"
check "prepare counts val" grep -q "val    6 images in 3 classes" <<<"$out"
d="$T/a/train/n00000001"
: > "$d/zero.JPEG"
head -c 700 "$T/a/train/n00000000/n00000000_1.JPEG" > "$d/trunc.JPEG"
head -c 3000 /dev/urandom > "$d/garbage.JPEG"
/usr/bin/python3 - "$d" <<'EOF' || true
import sys
from PIL import Image
d = sys.argv[1]
im = Image.new("RGB", (64, 48), (200, 30, 40))
im.save(d + "/png_named.JPEG", "PNG")
im.convert("CMYK").save(d + "/cmyk.JPEG", "JPEG")
im.convert("L").save(d + "/gray.JPEG", "JPEG")
EOF
before=$(tree_sum "$T/a")
out=$($RN50 prepare --data "$T/a" 2>/dev/null); rc=$?
after=$(tree_sum "$T/a")
check "prepare exits 0 with bad files" test "$rc" -eq 0
check "prepare leaves ROOT unchanged" test "$before" = "$after"
check "prepare finds zero bytes" grep -q "zero bytes: 1" <<<"$out"
check "prepare finds truncated" grep -q "truncated: 1" <<<"$out"
check "prepare finds garbage" grep -q "not a JPEG or PNG: 1" <<<"$out"
if [ -f "$d/cmyk.JPEG" ]; then
  check "prepare notes the PNG named .JPEG" grep -q "png_named.JPEG (named as a JPEG)" <<<"$out"
  check "prepare notes CMYK" grep -q "CMYK/YCCK JPEG: 1" <<<"$out"
  check "prepare notes grayscale" grep -q "grayscale: 1" <<<"$out"
fi
check "prepare writes the index" test -n "$(ls "$T/cache"/index-*.txt 2>/dev/null)"

# --- errors
expect 1 "no such directory" "missing ROOT" -- $RN50 prepare --data "$T/nope"
expect 1 "not a directory" "a file as ROOT" -- $RN50 prepare --data "$T/a/LOC_synset_mapping.txt"
mkdir -p "$T/empty"
expect 1 "unknown dataset layout" "unknown layout" -- $RN50 prepare --data "$T/empty"
mkdir -p "$T/b/ILSVRC/Data/CLS-LOC/train/n00000007"
expect 1 "empty class" "empty class" -- $RN50 prepare --data "$T/b"
rmdir "$T/b/ILSVRC/Data/CLS-LOC/train/n00000007"
if [ "$(id -u)" -ne 0 ]; then
  mkdir -p "$T/locked/train" && chmod 000 "$T/locked"
  expect 1 "Permission denied" "unreadable ROOT" -- $RN50 prepare --data "$T/locked"
  chmod 755 "$T/locked"
else
  echo "note: running as root, which reads any directory: the unreadable-ROOT case is checked only for other users"
fi
expect 2 "--data" "prepare needs --data" -- $RN50 prepare
expect 2 "--out" "pack needs --out" -- $RN50 pack --data "$T/a"
expect 2 "unknown option" "unknown option" -- $RN50 pack --data "$T/a" --out "$T/p" --bogus 1
expect 1 "no such directory" "pack of a missing ROOT" -- $RN50 pack --data "$T/nope" --out "$T/p"
expect 0 "usage: rn50 pack" "pack --help" -- $RN50 pack --help

# --- pack: kill -9 mid-way, resume, compare with an uninterrupted pack
expect 0 "rn50 synth" "synth for pack" -- $RN50 synth --out "$T/big" --classes 4 --per-class 150 --val-per-class 10 --size 200x150 --quality 95
RN50_QUIET=1 $RN50 pack --data "$T/big" --out "$T/p1" --max-side 120 --shard-size 40 >/dev/null 2>&1
check "uninterrupted pack" test -f "$T/p1/rn50pack.idx"
RN50_QUIET=1 $RN50 pack --data "$T/big" --out "$T/p2" --max-side 120 --shard-size 40 >/dev/null 2>&1 &
pid=$!
sleep 0.4
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
have=$(ls "$T/p2"/*.idx 2>/dev/null | wc -l)
echo "killed the pack with $have of 17 shards complete"
out=$($RN50 pack --data "$T/big" --out "$T/p2" --max-side 120 --shard-size 40 2>&1); rc=$?
check "resumed pack completes" test "$rc" -eq 0 -a -f "$T/p2/rn50pack.idx"
same=1
for f in "$T/p1"/*.tar "$T/p1"/*-*.idx; do cmp -s "$f" "$T/p2/$(basename "$f")" || { same=0; echo "differs: $(basename "$f")"; }; done
check "resumed shards equal the uninterrupted pack's" test "$same" -eq 1
check "no temporary files left" test -z "$(ls "$T/p2" | grep -E '\.part|\.tmp')"
expect 0 "complete already" "pack again: nothing to do" -- $RN50 pack --data "$T/big" --out "$T/p2" --max-side 120 --shard-size 40
expect 1 "other options" "pack refuses to mix packs" -- $RN50 pack --data "$T/big" --out "$T/p2" --max-side 100 --shard-size 40
check "tar shards readable by tar" bash -c "tar -tf '$T/p1/train-000000.tar' | head -2 | grep -q '\.jpg$'"
check "packed images within --max-side" bash -c "awk -F'\t' 'NF==8 && (\$4>120 || \$5>120)' '$T/p1/rn50pack.idx' | wc -l | grep -qx 0"

echo "RESULT $pass $fail"
[ "$fail" -eq 0 ]
