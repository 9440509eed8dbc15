#!/usr/bin/env bash
# The GPU validation run, in one call on a GPU machine (the device tool's, or any with a driver):
#   bash scripts/gpu_validate.sh [BUILD_DIR]      (default build/; OUT=folder for the logs, default gpu-report/)
# Uses the binary in BUILD_DIR when it runs there (on the device tool's machines: carry the folder
# scripts/gpu_bundle.sh makes, gpu-bundle, whose libs/ hold what their image lacks), else builds one. Then: the GPU smoke
# test, every GPU op against the CPU (tests/gpu), the training-step benchmark per preset on the GPU and
# on the CPU, a 200-step training run on the GPU, and the cold vs warm kernel-cache start. Every log
# goes to $OUT; a summary table is printed last. Record the results in docs/gpu-validation.md.
set -u
BUILD=${1:-build}
OUT=${OUT:-gpu-report}
mkdir -p "$OUT"
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
summary=()
note() { summary+=("$1"); }

nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || true
# a bundle from scripts/gpu_bundle.sh carries the libraries the machine's image may lack
[ -d "$BUILD/libs" ] && export LD_LIBRARY_PATH="$(cd "$BUILD/libs" && pwd)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
if ! "$BUILD/hybridrt" version > "$OUT/version.txt" 2>&1; then
  echo "the carried binary does not run here; building" | tee "$OUT/build.txt"
  BUILD=build-gpu
  { cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release && cmake --build "$BUILD" -j"$(nproc)"; } >> "$OUT/build.txt" 2>&1 \
    || { tail -30 "$OUT/build.txt"; echo "BUILD FAILED"; exit 1; }
  "$BUILD/hybridrt" version > "$OUT/version.txt" 2>&1
fi
BIN=$(cd "$BUILD" && pwd)/hybridrt
"$BIN" devices --smoke > "$OUT/devices.txt" 2>&1; note "devices --smoke: rc=$? $(tail -1 "$OUT/devices.txt")"

export HYBRIDRT_CACHE_DIR="$OUT/kernel-cache" HYBRIDRT_REQUIRE_GPU=1
(cd tests/lua && timeout 900 "$BIN" run ../gpu/test_gpu_ops.lua) > "$OUT/gpu_ops.txt" 2>&1
note "gpu.ops: rc=$? $(grep -E 'checks passed' "$OUT/gpu_ops.txt" | tail -1)"
grep -E '^FAIL' "$OUT/gpu_ops.txt" | head -20 > "$OUT/gpu_ops_failures.txt"

for dev in cuda cpu; do
  presets=tiny,small,medium,large,rwkv6,mamba2
  [ "$dev" = cpu ] && presets=tiny
  timeout 600 "$BIN" run scripts/bench_train.lua device=$dev presets=$presets batch=16 seq=256 repeat=5 \
    > "$OUT/bench_$dev.txt" 2>&1
  note "bench_train $dev: rc=$?"
done

rm -rf "$OUT/run"
timeout 900 "$BIN" run train.lua device=cuda steps=200 batch=64 seq=64 eval_every=100 out="$OUT/run" \
  > "$OUT/train.txt" 2>&1
note "train.lua 200 steps on the GPU: rc=$? $(grep -E '^done' "$OUT/train.txt" | tail -1)"

# cold vs warm start: a fresh cache (NVRTC compiles every kernel), then the same again (all cached)
for pass in cold warm; do
  [ "$pass" = cold ] && rm -rf "$OUT/start-cache"
  t0=$(date +%s.%N)
  HYBRIDRT_CACHE_DIR="$OUT/start-cache" timeout 600 "$BIN" run train.lua device=cuda steps=2 eval_batches=1 \
    out="$OUT/start-$pass" > "$OUT/start_$pass.txt" 2>&1
  rc=$?
  t1=$(date +%s.%N)
  rm -rf "$OUT/start-$pass"
  note "$pass start (2 steps): rc=$rc $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f s", b-a}') $(grep -E '^kernels:' "$OUT/start_$pass.txt" | head -1)"
done

echo
echo "== summary (logs in $OUT) =="
for line in "${summary[@]}"; do echo "$line"; done
echo "== benchmark (GPU) =="
tail -8 "$OUT/bench_cuda.txt"
echo "== failures (first 20) =="
cat "$OUT/gpu_ops_failures.txt"
