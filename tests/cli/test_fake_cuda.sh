#!/usr/bin/env bash
# The commands on the GPU path against a stand-in driver and cuBLAS (tests/cuda/fake_cuda_lib.c: one
# "GPU" whose memory is host memory and whose kernels do nothing, so every number is 0): device
# selection, train.lua with checkpoints and resume, sample.lua, hybridrt tune, cache warm --tuned.
# NVRTC compiles the kernels for sm_80 into a cache kept in the build tree. Skips without NVRTC.
# Usage: test_fake_cuda.sh path/to/hybridrt path/to/libfakecuda.so KERNEL_CACHE_DIR
set -u
source "$(dirname "$0")/expect.sh" "$1"
fake=$2
export HYBRIDRT_CACHE_DIR=$3 HYBRIDRT_CUDA_DRIVER_LIBRARY=$fake HYBRIDRT_CUBLAS_LIBRARY=$fake HYBRIDRT_TUNING=off
if ! "$bin" version | grep -qE "^NVRTC: +[0-9]"; then
    if [ "${HYBRIDRT_REQUIRE_NVRTC:-0}" = 1 ]; then echo "FAIL: HYBRIDRT_REQUIRE_NVRTC=1 but no NVRTC" >&2; exit 1; fi
    echo "cli.fake_cuda: SKIPPED: no NVRTC"
    exit 0
fi
run=$work/run
expect "devices lists the stand-in" 0 "fake GPU \\(libfakecuda\\).*sm_80" -- "$bin" devices
expect "train on cuda" 0 "device: cuda:0, fake GPU \\(libfakecuda\\) \\(sm_80\\), kernels built for sm_80" -- \
    "$bin" run train.lua device=cuda steps=4 batch=2 seq=16 eval_every=2 eval_batches=1 save_every=2 out="$run"
expect "the start-up kernel line" 0 "^kernels: [0-9]+ cached, [0-9]+ compiled" -- \
    "$bin" run train.lua device=cuda steps=2 batch=2 seq=16 eval_batches=1 out="$work/run2"
expect "a warm cache compiles nothing" 0 "^kernels: [0-9]+ cached, 0 compiled" -- \
    "$bin" run train.lua device=cuda steps=2 batch=2 seq=16 eval_batches=1 out="$work/run3"
expect "tuning off is said" 0 "tuning: no database for this GPU" -- \
    "$bin" run train.lua device=cuda steps=1 batch=2 seq=16 eval_batches=1 out="$work/run4"
check "the metrics hold the GPU memory" grep -q '"gpu_mem_mb":' "$run/metrics.jsonl"
check "checkpoints written from the GPU" test -s "$run/latest.safetensors" -a -s "$run/ckpt-step000002.safetensors"
expect "resume on cuda" 0 "resumed from .*latest.safetensors at step 4" -- \
    "$bin" run train.lua device=cuda resume=latest out="$run" steps=6 batch=2 seq=16 eval_batches=1
expect "resume on the CPU from a GPU run" 0 "resumed from .* at step 6" -- \
    "$bin" run train.lua device=cpu resume=latest out="$run" steps=7 batch=2 seq=16 eval_batches=1
expect "auto picks the GPU" 0 "device: cuda:0" -- \
    "$bin" run train.lua device=auto steps=1 batch=2 seq=16 eval_batches=1 out="$work/run5"
expect "cuda:1 does not exist" 1 "cuda:1: no such GPU: there is 1 GPU" -- \
    "$bin" run train.lua device=cuda:1 steps=1 out="$work/run6"
expect "sample on cuda" 0 "sampled 5 tokens" -- \
    "$bin" run sample.lua ckpt="$run/latest.safetensors" device=cuda tokens=5 seed=1
expect "tune" 0 "database: $work/fake.tune" -- \
    "$bin" tune --budget 2m presets=tiny batch=2 seq=8 repeat=3 --db "$work/fake.tune"
check "tune wrote the database" grep -q "^record hr_group_norm_forward " "$work/fake.tune"
expect "tune --show" 0 "hr_wkv6_backward +pairs=8,T=8,N=32" -- "$bin" tune --show presets=tiny batch=2 seq=8 --db "$work/fake.tune"
# (kernels do nothing here, so outputs are stale bytes and some variants are discarded as disagreeing)
expect "cache warm --tuned with it" 0 "tuned: .*fake.tune \\(fake GPU \\(libfakecuda\\), sm_80, [1-6] records\\)" -- \
    "$bin" cache warm --tuned "$work/fake.tune" --head-size 32
expect "a run uses a database" 0 "tuning: $work/fake.tune \\([1-6] records\\)" -- \
    env HYBRIDRT_TUNING="$work/fake.tune" "$bin" run train.lua device=cuda steps=1 batch=2 seq=8 eval_batches=1 \
    out="$work/run7"

echo "cli.fake_cuda: $passed checks passed, $failed failed"
[ "$failed" -eq 0 ]
