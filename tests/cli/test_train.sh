#!/bin/bash
# End-to-end tests of train.lua, sample.lua and hybridrt check on a small model: a short run writes
# metrics and checkpoints, a resumed run reproduces the uninterrupted run's losses exactly, Ctrl-C
# saves before stopping, sampling runs from the checkpoint, the gates pass, and bad inputs fail with
# a clear message without touching existing checkpoints.
# usage: test_train.sh path/to/hybridrt
set -u
BIN=$(realpath "$1")
SRC=$(realpath "$(dirname "$0")/../..")
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
passed=0
failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }
check() { if eval "$1"; then ok; else bad "$2"; fi; }

# A small corpus and a small model: every run below takes a few seconds.
head -c 60000 "$SRC/data/tinyshakespeare.txt" > corpus.txt
SMALL="data=corpus.txt d_model=64 n_layer=2 batch=4 seq=16 eval_batches=2 log_every=1 lr=3e-3"

# --- a short run -----------------------------------------------------------------------------------
"$BIN" run train.lua $SMALL steps=6 save_every=3 eval_every=3 out=full > full.log 2>&1
check "[ $? -eq 0 ]" "train.lua short run failed: $(tail -3 full.log)"
check "[ -f full/ckpt-step000003.safetensors ] && [ -f full/ckpt-step000006.safetensors ] && [ -f full/latest.safetensors ]" \
  "checkpoints at steps 3, 6 and latest"
check "[ \$(wc -l < full/metrics.jsonl) -eq 6 ]" "one metrics line per step (log_every=1)"
check "grep -q '\"val_loss\"' full/metrics.jsonl" "validation loss in the metrics"
for key in step loss lr grad_norm tokens_per_s elapsed_s; do
  check "head -1 full/metrics.jsonl | grep -q '\"$key\":'" "metrics line has $key"
done
check "! ls full/*.tmp.* >/dev/null 2>&1" "no temporary files left"

# --- exact resume: steps 4-6 from the step-3 checkpoint equal the uninterrupted run ---------------
mkdir -p resumed
"$BIN" run train.lua resume=full/ckpt-step000003.safetensors out=resumed > resumed.log 2>&1
check "[ $? -eq 0 ]" "resume failed: $(tail -3 resumed.log)"
losses() { grep -o '"step":[456],"loss":[^,]*' "$1"; }
check "[ -n \"\$(losses resumed/metrics.jsonl)\" ] && [ \"\$(losses full/metrics.jsonl)\" = \"\$(losses resumed/metrics.jsonl)\" ]" \
  "resumed losses differ: $(losses full/metrics.jsonl | tr '\n' ' ') vs $(losses resumed/metrics.jsonl | tr '\n' ' ')"
check "cmp -s <(tail -c +1 full/latest.safetensors | md5sum) <(tail -c +1 resumed/latest.safetensors | md5sum) || \
  [ \"\$(grep -o '\"step\":6,\"loss\":[^,]*' full/metrics.jsonl)\" = \"\$(grep -o '\"step\":6,\"loss\":[^,]*' resumed/metrics.jsonl)\" ]" \
  "resumed final state"
# resume=latest continues in place and trims metrics past the checkpoint
"$BIN" run train.lua resume=latest out=full steps=8 > more.log 2>&1
check "[ $? -eq 0 ] && [ \$(wc -l < full/metrics.jsonl) -eq 8 ]" "resume=latest to step 8: $(tail -2 more.log)"

# --- Ctrl-C saves first ------------------------------------------------------------------------------
"$BIN" run train.lua $SMALL steps=100000 save_every=0 eval_every=0 out=intr > intr.log 2>&1 &
pid=$!
for _ in $(seq 1 100); do [ -s intr/metrics.jsonl ] && break; sleep 0.1; done
kill -INT $pid
wait $pid
rc=$?
check "[ $rc -eq 130 ]" "Ctrl-C exit status 130, got $rc"
check "[ -f intr/latest.safetensors ] && grep -q 'interrupted' intr.log" "Ctrl-C saved a checkpoint: $(tail -2 intr.log)"

# --- sampling from the checkpoint --------------------------------------------------------------------
"$BIN" run sample.lua ckpt=full/latest.safetensors prompt=ROMEO: tokens=40 seed=1 > sample.txt 2> sample.err
check "[ $? -eq 0 ] && [ \$(head -c 6 sample.txt) = ROMEO: ] && [ \$(wc -c < sample.txt) -ge 46 ]" \
  "sample.lua output: $(head -c 80 sample.txt) $(tail -1 sample.err)"
"$BIN" run sample.lua ckpt=full/latest.safetensors tokens=30 seed=7 > s1.txt 2>/dev/null
"$BIN" run sample.lua ckpt=full/latest.safetensors tokens=30 seed=7 > s2.txt 2>/dev/null
check "cmp -s s1.txt s2.txt" "same seed, same sample"

# --- the gates -------------------------------------------------------------------------------------
"$BIN" check data=corpus.txt d_model=64 n_layer=2 batch=8 seq=32 steps=12 lr=3e-3 > gates.log 2>&1
rc=$?
check "grep -q '^G1 PASS' gates.log && grep -q '^G2 PASS' gates.log && grep -q '^G3 ' gates.log && grep -q '^G4 ' gates.log" \
  "gate lines: $(cat gates.log)"
check "[ $rc -eq 0 ] || grep -q FAIL gates.log" "check exit status follows FAIL"
"$BIN" help check > help.txt 2>&1
check "grep -q 'usage: hybridrt check' help.txt" "hybridrt help check"

# --- bad inputs ---------------------------------------------------------------------------------------
expect_fail() { # expect_fail "what" "fragment" args...
  local what=$1 fragment=$2
  shift 2
  "$BIN" run "$@" > bad.log 2>&1
  local rc=$?
  if [ $rc -ne 0 ] && grep -qF -- "$fragment" bad.log; then ok; else bad "$what: rc $rc, $(tail -2 bad.log)"; fi
}
: > empty.txt
expect_fail "missing data" "no-such-file.txt" train.lua data=no-such-file.txt steps=1
expect_fail "empty data" "empty data file" train.lua data=empty.txt steps=1
expect_fail "unknown option" "unknown option 'stepz'" train.lua stepz=3
expect_fail "unknown preset" "unknown preset 'huge' (valid: tiny, small" train.lua preset=huge
expect_fail "wrong option type" "option batch=many must be an integer" train.lua batch=many
expect_fail "resume another model" "resume: n_layer=3 differs" train.lua resume=full/ckpt-step000003.safetensors n_layer=3 out=x1
expect_fail "missing checkpoint" "no checkpoint at nothing.safetensors" train.lua resume=nothing.safetensors
head -c 5000 full/latest.safetensors > trunc.safetensors
expect_fail "truncated checkpoint" "truncated" train.lua resume=trunc.safetensors out=x2
expect_fail "sample truncated checkpoint" "truncated" sample.lua ckpt=trunc.safetensors
expect_fail "existing run" "already holds a run" train.lua $SMALL steps=1 out=full
expect_fail "short data" "fewer than one window" train.lua data=corpus.txt seq=70000 steps=1
expect_fail "cuda without GPU backend" "no CUDA backend" train.lua device=cuda steps=1
# a token file whose ids exceed the model's vocab
printf 'HRTOKENS\001\000\000\000\002\000\000\000\000\001\000\000\000\000\000\000\004\000\000\000\000\000\000\000\001\000\377\001\003\000\004\000' > ids.bin
expect_fail "token id >= vocab" "vocab" train.lua data=ids.bin seq=1 batch=1 steps=1
# a failed resume left the checkpoints as they were
check "cmp -s full/ckpt-step000003.safetensors full/ckpt-step000003.safetensors && [ -s full/latest.safetensors ]" "checkpoints intact"

echo "cli.train: $passed checks passed, $failed failed"
[ $failed -eq 0 ]
