#!/bin/bash
# Crash safety: kill -9 at random moments.
# - train.lua writing a checkpoint every step (a tiny model): killed CRASH_KILLS times (30), each time
#   a new process continuing with resume=latest (a fresh start while there is no checkpoint yet).
#   After every kill every checkpoint present loads (tests/cli/load_checkpoints.lua), and the run
#   finished at the end holds the tensors of an uninterrupted run bit for bit, with its losses.
# - hybridrt cache warm (NVRTC, no GPU needed; skipped without NVRTC): killed CRASH_WARM_KILLS times
#   (10); after each kill `hybridrt cache verify` finds no bad entry and removes the temporary files
#   the killed writer left, and a last warm completes.
# The delays are random; CRASH_SEED=N repeats them (the seed is printed; what they hit depends on the
# machine's speed too). The closing lines count where the kills landed.
# usage: test_crash.sh path/to/hybridrt
set -u
source "$(dirname "$0")/expect.sh" "$1" # bin, src, work (the current directory), passed, failed
bad() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }
verdict() { if eval "$1"; then passed=$((passed + 1)); else bad "$2"; fi; }
seed=${CRASH_SEED:-$(($(date +%s) % 32768))}
RANDOM=$seed
echo "cli.crash: seed $seed (CRASH_SEED=$seed repeats these delays)"
# pause MIN_MS SPAN_MS sleeps MIN_MS plus up to SPAN_MS (RANDOM read here: a $(subshell) would reseed it)
pause() { local ms=$(($1 + RANDOM % $2)); sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"; }
killed() { kill -9 "$1" 2>/dev/null; { wait "$1"; } 2>/dev/null; } # the exit status: 137 if the kill landed

# --- train.lua, a checkpoint every step ------------------------------------------------------------
head -c 60000 "$src/data/tinyshakespeare.txt" > corpus.txt
RUN="data=corpus.txt d_model=32 n_layer=1 batch=2 seq=16 eval_every=0 eval_batches=1 log_every=1 lr=3e-3 steps=8000"
# 8000 steps: 30 kills of at most 0.6 s reach 2500 at most here (7 ms a step with its checkpoint), 7000 on a tmpfs
kills=${CRASH_KILLS:-30}
ended=0 at_start=0 mid_ckpt=0 mid_latest=0 mid_metrics=0 between=0 resumes=0 fresh=0 steps_done=0 whole_temps=0
for i in $(seq 1 "$kills"); do
  if [ -f run/latest.safetensors ]; then
    args="resume=latest out=run"
    resumes=$((resumes + 1))
  else
    args="$RUN save_every=1 out=run"
    fresh=$((fresh + 1))
  fi
  "$bin" run train.lua $args threads=1 > "train.$i.log" 2>&1 &
  pid=$!
  pause 0 600 # 0-600 ms: while starting, or training
  killed $pid
  rc=$?
  if [ $rc -eq 0 ]; then kills=$((i - 1)) ended=1; echo "cli.crash: the run reached its end before kill $i"; break; fi
  if [ $rc -ne 137 ]; then bad "kill $i: train.lua ended with status $rc before the kill: $(tail -3 "train.$i.log")"; break; fi
  # where it landed: before the lock was taken (its pid is not in .lock), in a write (a temporary file
  # left: the lock's new holder removes a dead one's, so these are this process's), or between writes
  temps=$(ls run 2>/dev/null | grep '\.tmp\.')
  if ! grep -qx "pid=$pid" run/.lock 2>/dev/null; then at_start=$((at_start + 1))
  elif grep -q '^ckpt-step.*\.tmp\.' <<<"$temps"; then mid_ckpt=$((mid_ckpt + 1))
  elif grep -q '^latest\..*\.tmp\.' <<<"$temps"; then mid_latest=$((mid_latest + 1))
  elif grep -q '^metrics\..*\.tmp\.' <<<"$temps"; then mid_metrics=$((mid_metrics + 1))
  else between=$((between + 1)); fi
  [ -f run/latest.safetensors ] || continue # killed before the first checkpoint: nothing to load yet
  "$bin" run "$src/tests/cli/load_checkpoints.lua" dir=run > "load.$i.log" 2>&1
  verdict "[ $? -eq 0 ]" "kill $i: a checkpoint does not load: $(head -3 "load.$i.log")"
  step=$(sed -n 's/.*latest at step \([0-9]*\);.*/\1/p' "load.$i.log")
  whole=$(sed -n 's/.*temporary files: [0-9]* (\([0-9]*\) whole.*/\1/p' "load.$i.log")
  whole_temps=$((whole_temps + ${whole:-0}))
  steps_done=${step:-$steps_done}
  # the checkpoints before latest's step were loaded, and no later process writes them again: drop
  # them to keep the directory small (a step of this model is 0.6 MB)
  for f in run/ckpt-step*.safetensors; do
    [ -f "$f" ] || continue
    s=$(basename "$f" .safetensors)
    [ $((10#${s#ckpt-step})) -lt "${step:-0}" ] && rm -f "$f"
  done
done
echo "cli.crash: train.lua killed $kills times ($at_start while starting, before the lock; $mid_ckpt writing a" \
  "ckpt-step file, $mid_latest writing latest.safetensors, $mid_metrics rewriting metrics.jsonl; $between between" \
  "writes); $resumes resumes, $fresh fresh starts; $steps_done steps checkpointed; $whole_temps of the temporary" \
  "files left were whole (killed after the last write: in the fsync or before the rename)"
# the last process runs to the end (no checkpoint per step: faster; the cadence does not change the run)
if [ $ended -eq 0 ]; then
  "$bin" run train.lua resume=latest out=run threads=1 save_every=0 > final.log 2>&1
  verdict "[ $? -eq 0 ] && grep -q '^done: step 8000' final.log" "the run after the kills does not finish: $(tail -3 final.log)"
  verdict "grep -q '^note: took over the lock of run from pid [0-9]* on host .*, which ended without releasing it' final.log" \
    "the last run does not take the killed run's lock over: $(grep -m2 'lock\|resumed' final.log)"
fi
verdict "[ ! -s run/.lock ] && ! ls run | grep -q '\.tmp\.'" \
  "after the end: run/.lock '$(cat run/.lock 2>/dev/null)', temporary files: $(ls run | grep '\.tmp\.' | tr '\n' ' ')"
"$bin" run train.lua $RUN save_every=0 out=ref threads=1 > ref.log 2>&1
verdict "[ $? -eq 0 ]" "the uninterrupted run failed: $(tail -3 ref.log)"
"$bin" run "$src/tests/cli/same_tensors.lua" a=ref/latest.safetensors b=run/latest.safetensors > same.log 2>&1
verdict "[ $? -eq 0 ] && grep -q '^same tensors' same.log" \
  "killed and resumed $kills times, the run's tensors differ from the uninterrupted run's: $(tail -4 same.log)"
losses() { grep -o '"step":[0-9]*,"loss":[^,]*' "$1"; }
verdict "[ \"\$(losses run/metrics.jsonl | wc -l)\" -eq 8000 ] && [ \"\$(losses run/metrics.jsonl)\" = \"\$(losses ref/metrics.jsonl)\" ]" \
  "metrics after the kills: $(losses run/metrics.jsonl | wc -l) lines, $(diff <(losses ref/metrics.jsonl) <(losses run/metrics.jsonl) | head -4 | tr '\n' ' ')"

# --- hybridrt cache warm ---------------------------------------------------------------------------
if "$bin" version | grep -qE "^NVRTC: +[0-9]"; then
  export HYBRIDRT_CACHE_DIR="$work/kcache"
  warm=(cache warm --arch sm_80,sm_90 --head-size 32 --jobs 2) # 266 kernels, about 12 s on 2 cores
  wkills=${CRASH_WARM_KILLS:-10} wlanded=0 wmid=0 wfinished=0
  for i in $(seq 1 "$wkills"); do
    "$bin" "${warm[@]}" > "warm.$i.log" 2>&1 &
    pid=$!
    pause 100 1800 # 0.1-1.9 s of a warm that goes on where the last one was killed
    killed $pid
    rc=$?
    if [ $rc -eq 0 ]; then wfinished=$((wfinished + 1)); break; fi # all cached: nothing left to kill
    verdict "[ $rc -eq 137 ]" "cache warm ended with status $rc before kill $i: $(tail -3 "warm.$i.log")"
    wlanded=$((wlanded + 1))
    # a kill in an entry's write leaves its temporary file: verify removes it (its writer is gone)
    temps=$(find kcache -name '*.tmp.*' 2>/dev/null | wc -l)
    [ "$temps" -gt 0 ] && wmid=$((wmid + 1))
    "$bin" cache verify > "verify.$i.log" 2>&1
    verdict "[ $? -eq 0 ] && grep -q 'entries checked, 0 bad' verify.$i.log" \
      "cache verify after kill $i of cache warm: $(tail -3 "verify.$i.log")"
    verdict "[ $temps -eq 0 ] || grep -q '^removed $temps temporary files\\? (.*) that writers killed mid-write left' verify.$i.log" \
      "cache verify after kill $i does not remove the $temps temporary files left: $(head -2 "verify.$i.log")"
    verdict "[ \$(find kcache -name '*.tmp.*' | wc -l) -eq 0 ]" "temporary files after verify $i: $(find kcache -name '*.tmp.*')"
  done
  "$bin" "${warm[@]}" > warm.final.log 2>&1
  verdict "[ $? -eq 0 ] && grep -q ' 0 failed' warm.final.log" "cache warm after the kills: $(tail -3 warm.final.log)"
  n=$(sed -n 's/^warming .*: \([0-9]*\) kernels .*/\1/p' warm.final.log)
  "$bin" cache verify > verify.final.log 2>&1
  verdict "[ $? -eq 0 ] && grep -q '^${n:-?} entries checked, 0 bad' verify.final.log" \
    "cache verify after the last warm ($n kernels): $(tail -2 verify.final.log)"
  verdict "[ \$(find kcache -name '*.tmp.*' | wc -l) -eq 0 ]" "temporary files after the last warm: $(find kcache -name '*.tmp.*')"
  echo "cli.crash: cache warm killed $wlanded times ($wmid writing an entry: its temporary file left, then removed" \
    "by verify; finished before its kill: $wfinished); the last warm: $(grep -o 'kernels: .*failed' warm.final.log)"
else
  echo "cli.crash: cache warm part skipped: no NVRTC ($("$bin" version | grep '^NVRTC'))"
fi

echo "cli.crash: $passed checks passed, $failed failed"
[ $failed -eq 0 ]
