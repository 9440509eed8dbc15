#!/bin/bash
# End-to-end tests of train.lua, sample.lua and hybridrt check on a small model: a short run writes
# metrics and checkpoints, a resumed run reproduces the uninterrupted run's tensors byte for byte (and
# its losses) at 1 and 2 threads, Ctrl-C saves before stopping, a run directory takes one run at a time
# (a lock left by kill -9 is taken over), sampling runs from the checkpoint, the gates run (fresh and
# on a checkpoint; the default model passes all four), the same seed repeats a run bitwise,
# accumulation and the time limit work, and bad inputs fail with a clear message without touching
# existing checkpoints.
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

# --- exact resume: 40 steps against 20 + a resume for 20, at 1 and at 2 threads ----------------------
# every parameter and AdamW moment byte for byte (tests/cli/same_tensors.lua; the metadata, which holds
# the elapsed time, is not compared), and the losses of steps 21-40
late_losses() { grep -o '"step":\(2[1-9]\|3[0-9]\|40\),"loss":[^,]*' "$1"; }
for th in 1 2; do
  "$BIN" run train.lua $SMALL steps=40 save_every=20 eval_every=20 threads=$th out=whole$th > whole$th.log 2>&1
  check "[ $? -eq 0 ] && [ -f whole$th/ckpt-step000020.safetensors ]" "40 steps at $th threads: $(tail -2 whole$th.log)"
  "$BIN" run train.lua resume=whole$th/ckpt-step000020.safetensors threads=$th out=halves$th > halves$th.log 2>&1
  check "[ $? -eq 0 ] && grep -q '^resumed from whole$th/ckpt-step000020.safetensors at step 20' halves$th.log" \
    "resume at step 20, $th threads: $(tail -2 halves$th.log)"
  "$BIN" run "$SRC/tests/cli/same_tensors.lua" a=whole$th/latest.safetensors b=halves$th/latest.safetensors > same$th.log 2>&1
  check "[ $? -eq 0 ] && grep -q '^same tensors: 216 ' same$th.log" \
    "20 steps + a resume for 20 against 40 steps, $th threads: $(tail -4 same$th.log)"
  check "[ \$(late_losses halves$th/metrics.jsonl | wc -l) -eq 20 ] && [ \"\$(late_losses whole$th/metrics.jsonl)\" = \"\$(late_losses halves$th/metrics.jsonl)\" ]" \
    "resumed losses differ at $th threads: $(diff <(late_losses whole$th/metrics.jsonl) <(late_losses halves$th/metrics.jsonl) | head -4 | tr '\n' ' ')"
done
# Not checked, but said: 1 thread trains other bits than 2 (2, 3 and 4 agree). OpenBLAS's sgemm rounds
# differently on 1 thread once the inner dimension passes 320; here that is Mamba-2's in_proj input
# gradient (k = 386), from the first backward on
"$BIN" run "$SRC/tests/cli/same_tensors.lua" a=whole1/latest.safetensors b=whole2/latest.safetensors > threads.log 2>&1 ||
  echo "cli.train: note: 1 and 2 threads train different bits: $(tail -1 threads.log)"
# resume=latest continues in place and trims metrics past the checkpoint
"$BIN" run train.lua resume=latest out=full steps=8 > more.log 2>&1
check "[ $? -eq 0 ] && [ \$(wc -l < full/metrics.jsonl) -eq 8 ]" "resume=latest to step 8: $(tail -2 more.log)"

# --- a full disk never costs the metrics history -----------------------------------------------------
# the resume's rewrite of metrics.jsonl fails (a file-size limit stands in for a full disk: writes
# past 1 KiB fail with EFBIG): the history stays as it was, the run stops naming the file
for _ in 1 2 3; do head -3 full/metrics.jsonl >> full/metrics.jsonl; done # a history over 1 KiB, all kept
cp full/metrics.jsonl history.jsonl
(trap '' XFSZ; ulimit -f 1; exec "$BIN" run train.lua resume=latest out=full steps=10) 2>&1 | cat > disk.log
check "[ ${PIPESTATUS[0]} -ne 0 ] && grep -q 'cannot rewrite .*metrics.jsonl for the resume (left as it was)' disk.log && \
  cmp -s history.jsonl full/metrics.jsonl && ! ls full/*.tmp.* >/dev/null 2>&1" \
  "a failed metrics rewrite keeps the history: $(tail -2 disk.log)"
# an append that fails (ENOSPC: the file is /dev/full) stops the run at once, naming the file
mkdir -p diskfull && ln -s /dev/full diskfull/metrics.jsonl
"$BIN" run train.lua $SMALL steps=6 save_every=3 out=diskfull > diskfull.log 2>&1
check "[ $? -ne 0 ] && grep -q 'writing diskfull/metrics.jsonl failed: No space left on device' diskfull.log" \
  "a failed metrics append stops the run: $(tail -2 diskfull.log)"
# a failed save says what was written: here the step file is, latest.safetensors (a directory in its
# place) is not (the message once said "no checkpoint was written for this step" either way)
mkdir -p halfsaved/latest.safetensors
"$BIN" run train.lua resume=full/ckpt-step000003.safetensors out=halfsaved steps=6 save_every=4 > halfsaved.log 2>&1
check "[ $? -ne 0 ] && grep -q 'training stopped at step 4: .*halfsaved/latest.safetensors.*not a regular file.*(halfsaved/ckpt-step000004.safetensors was written for step 4, halfsaved/latest.safetensors was not: it holds what it held before)' halfsaved.log && [ -f halfsaved/ckpt-step000004.safetensors ]" \
  "a save that writes the step file but not latest says so: $(grep -v '^\s' halfsaved.log | tail -2)"
# the rewrite never replaces what is not a regular file
ln -sf /dev/full full/metrics.jsonl
"$BIN" run train.lua resume=latest out=full steps=10 > devfull.log 2>&1
check "[ $? -ne 0 ] && grep -q 'not a regular file: not replaced' devfull.log && [ -L full/metrics.jsonl ]" \
  "a metrics file that is a device is refused, not replaced: $(tail -2 devfull.log)"
rm full/metrics.jsonl && cp history.jsonl full/metrics.jsonl

# --- Ctrl-C saves first ------------------------------------------------------------------------------
"$BIN" run train.lua $SMALL steps=100000 save_every=0 eval_every=0 out=intr > intr.log 2>&1 &
pid=$!
for _ in $(seq 1 100); do [ -s intr/metrics.jsonl ] && break; sleep 0.1; done
kill -INT $pid
wait $pid
rc=$?
check "[ $rc -eq 130 ]" "Ctrl-C exit status 130, got $rc"
check "[ -f intr/latest.safetensors ] && grep -q 'interrupted' intr.log" "Ctrl-C saved a checkpoint: $(tail -2 intr.log)"
check "[ -f intr/.lock ] && [ ! -s intr/.lock ]" "Ctrl-C releases the run's lock: intr/.lock holds '$(cat intr/.lock)'"

# --- one run at a time in a run directory -------------------------------------------------------------
# OUT/.lock is locked for the life of a run and names it: a second run (fresh or a resume) into the
# same out= is refused naming the first's pid and start time; killed with -9, the first's lock dies with
# it and a resume takes the left-over file over, saying so in one line
"$BIN" run train.lua $SMALL steps=100000 save_every=2 eval_every=0 out=busy > busy.log 2>&1 &
pid=$!
for _ in $(seq 1 100); do [ -f busy/latest.safetensors ] && break; sleep 0.1; done
check "grep -qx 'pid=$pid' busy/.lock && grep -q '^started=20[0-9-]* [0-9:]* ' busy/.lock" \
  "the running run's busy/.lock: $(cat busy/.lock 2>&1 | tr '\n' ' ')"
"$BIN" run train.lua $SMALL steps=2 out=busy > busy2.log 2>&1
check "[ $? -ne 0 ] && grep -q 'train.lua: busy is in use by another run (pid $pid on host .*, started 20[0-9-]* [0-9:]* ' busy2.log" \
  "a second run into a busy out= is not refused naming the first (pid $pid): $(grep -v '^\s' busy2.log | tail -2)"
"$BIN" run train.lua resume=latest out=busy > busy3.log 2>&1
check "[ $? -ne 0 ] && grep -q 'busy is in use by another run (pid $pid ' busy3.log" \
  "a resume into a busy out= is not refused: $(grep -v '^\s' busy3.log | tail -2)"
kill -9 $pid
{ wait $pid; } 2>/dev/null
"$BIN" run train.lua resume=latest out=busy minutes=0.005 > takeover.log 2>&1
check "[ $? -eq 0 ] && [ \$(grep -c 'took over the lock' takeover.log) -eq 1 ] && \
  grep -q '^note: took over the lock of busy from pid $pid on host .*, which ended without releasing it' takeover.log" \
  "a resume after kill -9 does not take the lock over: $(grep -v '^\s' takeover.log | tail -3)"
check "[ -f busy/.lock ] && [ ! -s busy/.lock ] && ! ls busy/*.tmp.* >/dev/null 2>&1" \
  "a run that ends empties its lock file (busy/.lock: '$(cat busy/.lock)') and leaves no temporary file"

# --- sampling from the checkpoint --------------------------------------------------------------------
"$BIN" run sample.lua ckpt=full/latest.safetensors prompt=ROMEO: tokens=40 seed=1 > sample.txt 2> sample.err
check "[ $? -eq 0 ] && [ \$(head -c 6 sample.txt) = ROMEO: ] && [ \$(wc -c < sample.txt) -ge 46 ]" \
  "sample.lua output: $(head -c 80 sample.txt) $(tail -1 sample.err)"
"$BIN" run sample.lua ckpt=full/latest.safetensors tokens=30 seed=7 > s1.txt 2>/dev/null
"$BIN" run sample.lua ckpt=full/latest.safetensors tokens=30 seed=7 > s2.txt 2>/dev/null
check "cmp -s s1.txt s2.txt" "same seed, same sample"
# a checkpoint of NaNs is refused by name (sample.lua once printed 0xFF bytes and exited 0)
cat > nan_ckpt.lua <<'EOF'
local hr = require "hybridrt"
local t, meta = hr.load_safetensors("full/latest.safetensors")
for k, v in pairs(t) do if v.dtype == "f32" then t[k] = v * (0 / 0) end end
hr.save_safetensors("nan.safetensors", t, meta)
EOF
"$BIN" run nan_ckpt.lua && "$BIN" run sample.lua ckpt=nan.safetensors tokens=10 > nan.txt 2> nan.err
check "[ $? -ne 0 ] && [ ! -s nan.txt ] && grep -q 'nan.safetensors: .* holds NaN or infinite values' nan.err" \
  "sample.lua on a checkpoint of NaNs: $(head -c 60 nan.txt | od -c | head -2) $(grep -v '^\s' nan.err | tail -1)"

# --- the gates -------------------------------------------------------------------------------------
"$BIN" check data=corpus.txt d_model=64 n_layer=2 batch=8 seq=32 steps=12 lr=3e-3 > gates.log 2>&1
rc=$?
check "grep -q '^G1 PASS' gates.log && grep -q '^G2 PASS' gates.log && grep -q '^G3 ' gates.log && grep -q '^G4 ' gates.log" \
  "gate lines: $(cat gates.log)"
check "( [ $rc -ne 0 ] && grep -q '^G. FAIL' gates.log ) || ( [ $rc -eq 0 ] && ! grep -q '^G. FAIL' gates.log )" \
  "check exit status $rc does not follow the FAIL lines"
# the default model (tiny hybrid, gains fusion, the bundled corpus, 100 steps: about 70 s) passes all four
"$BIN" check > gates_default.log 2>&1
rc=$?
check "[ $rc -eq 0 ] && grep -q '^gates: 4 PASS, 0 WARN, 0 FAIL' gates_default.log" \
  "the default model's gates: $(grep '^G\|^gates' gates_default.log)"
"$BIN" check ckpt=full/latest.safetensors data=corpus.txt batch=8 seq=32 steps=4 > gates_ckpt.log 2>&1
check "grep -q '^checkpoint: full/latest.safetensors' gates_ckpt.log && grep -q '^G1 PASS' gates_ckpt.log && \
  grep -q '^G2 SKIP' gates_ckpt.log && grep -q '^G4 ' gates_ckpt.log" "gates on a checkpoint: $(cat gates_ckpt.log)"
"$BIN" check ckpt=full/latest.safetensors d_model=32 > gates_bad.log 2>&1
check "[ $? -ne 0 ] && grep -q 'd_model= cannot be combined with ckpt=' gates_bad.log" "check ckpt= with a model option: $(cat gates_bad.log)"
"$BIN" help check > help.txt 2>&1
check "grep -q 'usage: hybridrt check' help.txt" "hybridrt help check"

# --- the same options and seed give the same run -----------------------------------------------------
"$BIN" run train.lua $SMALL steps=4 save_every=0 eval_every=0 out=again > again.log 2>&1
"$BIN" run train.lua $SMALL steps=4 save_every=0 eval_every=0 out=again2 > again2.log 2>&1
check "[ -s again/metrics.jsonl ] && [ \"\$(grep -o '\"loss\":[^,]*' again/metrics.jsonl)\" = \"\$(grep -o '\"loss\":[^,]*' again2/metrics.jsonl)\" ]" \
  "two runs with the same seed differ: $(grep -o '"loss":[^,]*' again/metrics.jsonl | tr '\n' ' ') vs $(grep -o '"loss":[^,]*' again2/metrics.jsonl | tr '\n' ' ')"
# every tensor (parameters and AdamW moments) byte for byte; the metadata differs only in elapsed time
"$BIN" run "$SRC/tests/cli/same_tensors.lua" a=again/latest.safetensors b=again2/latest.safetensors > same.log 2>&1
check "[ $? -eq 0 ] && grep -q 'same tensors' same.log" "same seed, same final tensors: $(tail -1 same.log)"
"$BIN" run train.lua $SMALL steps=4 save_every=0 eval_every=0 seed=7 out=other > other.log 2>&1
check "[ \"\$(grep -o '\"loss\":[^,]*' again/metrics.jsonl | tail -1)\" != \"\$(grep -o '\"loss\":[^,]*' other/metrics.jsonl | tail -1)\" ]" \
  "another seed gives another run"

# --- gradient accumulation and the time limit ----------------------------------------------------------
"$BIN" run train.lua $SMALL batch=2 accum=2 steps=3 eval_every=0 save_every=0 out=accum > accum.log 2>&1
check "[ $? -eq 0 ] && grep -q 'accum 2 = 64 tokens/step' accum.log && grep -q '\"step\":3,.*\"tokens\":192' accum/metrics.jsonl" \
  "accum=2 run: $(tail -2 accum.log)"
"$BIN" run train.lua $SMALL steps=100000 minutes=0.02 eval_every=0 save_every=0 out=timed > timed.log 2>&1
check "[ $? -eq 0 ] && grep -q 'time limit of 0.02 minutes reached' timed.log && [ -f timed/latest.safetensors ]" \
  "minutes=0.02 stops and saves: $(tail -2 timed.log)"

# --- bad inputs ---------------------------------------------------------------------------------------
sums_before=$(md5sum full/*.safetensors)
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
expect_fail "cuda without a GPU" "no NVIDIA driver" train.lua device=cuda steps=1
# a token file whose ids exceed the model's vocab
printf 'HRTOKENS\001\000\000\000\002\000\000\000\000\001\000\000\000\000\000\000\004\000\000\000\000\000\000\000\001\000\377\001\003\000\004\000' > ids.bin
expect_fail "token id >= vocab" "vocab" train.lua data=ids.bin seq=1 batch=1 steps=1
# the failed runs above (a bad resume, an existing run) left every checkpoint as it was
check "[ \"\$(md5sum full/*.safetensors)\" = \"\$sums_before\" ]" "checkpoints changed by failed runs"

# --- a BPE model end to end: tokenize --train-bpe, train on the token file, resume, sample ---------------
"$BIN" tokenize --train-bpe 400 corpus.txt -o bpe.bin -q > bpe-tok.log 2>&1
check "[ $? -eq 0 ] && [ -f bpe.tokenizer.json ]" "tokenize --train-bpe: $(tail -2 bpe-tok.log)"
BPE="d_model=64 n_layer=2 batch=4 seq=16 eval_batches=2 log_every=1 lr=3e-3 tokenizer=bpe.tokenizer.json"
"$BIN" run train.lua $BPE data=bpe.bin steps=4 save_every=2 eval_every=2 out=bpe > bpe.log 2>&1
check "[ $? -eq 0 ]" "train.lua on a BPE token file: $(tail -3 bpe.log)"
check "grep -q 'token file' bpe.log" "the data line names the token file"
# text through the tokenizer gives the same token stream as the token file, so the same losses
"$BIN" run train.lua $BPE data=corpus.txt steps=4 save_every=2 eval_every=2 out=bpe-text > bpe-text.log 2>&1
check "[ $? -eq 0 ] && grep -q 'text through bpe.tokenizer.json, BPE vocab 400' bpe-text.log" \
  "train.lua on text with tokenizer=: $(tail -3 bpe-text.log)"
check "[ \"\$(grep -o '\"loss\":[^,]*' bpe/metrics.jsonl)\" = \"\$(grep -o '\"loss\":[^,]*' bpe-text/metrics.jsonl)\" ]" \
  "token file and text through the tokenizer train the same"
# resuming takes the tokenizer from the checkpoint (the file may be gone)
mv bpe.tokenizer.json bpe.tokenizer.json.away
mkdir -p bpe-resumed
"$BIN" run train.lua resume=bpe/ckpt-step000002.safetensors out=bpe-resumed > bpe-resumed.log 2>&1
check "[ $? -eq 0 ]" "BPE resume from the checkpoint's tokenizer: $(tail -3 bpe-resumed.log)"
bpe_losses() { grep -o '"step":[34],"loss":[^,]*' "$1"; }
check "[ -n \"\$(bpe_losses bpe-resumed/metrics.jsonl)\" ] && [ \"\$(bpe_losses bpe/metrics.jsonl)\" = \"\$(bpe_losses bpe-resumed/metrics.jsonl)\" ]" \
  "BPE resumed losses differ"
out=$("$BIN" run sample.lua ckpt=bpe/latest.safetensors tokens=20 prompt="ROMEO:" seed=1 2>&1)
check "[ $? -eq 0 ] && grep -q '^ROMEO:' <<<\"\$out\"" "sample.lua decodes with the checkpoint's tokenizer: $out"
mv bpe.tokenizer.json.away bpe.tokenizer.json
# a BPE token file without tokenizer= trains, but its checkpoints cannot be sampled as text
"$BIN" run train.lua d_model=64 n_layer=2 batch=4 seq=16 data=bpe.bin steps=1 out=bpe-notok > bpe-notok.log 2>&1
check "[ $? -eq 0 ] && grep -q 'pass tokenizer=FILE' bpe-notok.log" "note about the missing tokenizer: $(tail -2 bpe-notok.log)"
expect_fail "sample without a tokenizer" "records no tokenizer" sample.lua ckpt=bpe-notok/latest.safetensors
out=$("$BIN" run sample.lua ckpt=bpe-notok/latest.safetensors tokenizer=bpe.tokenizer.json tokens=5 2>&1)
check "[ $? -eq 0 ]" "sample.lua tokenizer=FILE: $out"
"$BIN" tokenize --train-bpe 256 --special '' --tokenizer small.tokenizer.json corpus.txt -o small.bin -q 2>/dev/null
expect_fail "tokenizer smaller than the token file" "ids go up to vocab 400 but the tokenizer has 256" \
  train.lua data=bpe.bin tokenizer=small.tokenizer.json steps=1 out=x3
expect_fail "missing tokenizer file" "no-such.json: No such file" train.lua tokenizer=no-such.json steps=1 out=x4

echo "cli.train: $passed checks passed, $failed failed"
[ $failed -eq 0 ]
