#!/usr/bin/env bash
# CLI behaviour: exit codes and the messages users see. Usage: test_cli.sh path/to/hybridrt
set -u
source "$(dirname "$0")/expect.sh" "$1"

expect "version" 0 "^hybridrt [0-9]+\.[0-9]+" -- "$bin" version
expect "version names Lua" 0 "Lua: +Lua 5\.4" -- "$bin" version
expect "version names BLAS" 0 "BLAS: +OpenBLAS" -- "$bin" version
if grep -qw avx2 /proc/cpuinfo 2>/dev/null; then
    # OpenBLAS falls back to SSE-era kernels on CPUs it does not know; the binary must correct that
    if "$bin" version | grep -qE "; (Prescott|Core2|Penryn|Dunnington|Nehalem|Atom|Sandybridge|Katmai|Coppermine|Northwood|Banias) kernels"; then
        failed=$((failed + 1))
        echo "FAIL BLAS kernels fit an AVX2 CPU: $("$bin" version | grep BLAS)" >&2
    else
        passed=$((passed + 1))
    fi
    printf 'local f = io.open("/proc/self/comm"); print("comm", f:read("l"))\n' >comm.lua
    expect "the process keeps its name" 0 "comm.hybridrt" -- "$bin" run comm.lua
    expect "OPENBLAS_CORETYPE set by the user wins" 0 "BLAS: .*Haswell kernels" -- env OPENBLAS_CORETYPE=Haswell "$bin" version
fi
# under a small address-space limit OpenBLAS's load-time buffer is refused and it retried forever,
# before main: every command hung. Refused up front now (runtime/cli/address_limit.c)
expect "a small ulimit -v is refused, not a hang" 1 "address-space limit \(ulimit -v\) is 292 MiB, below the 512 MiB" -- \
    timeout 30 bash -c 'ulimit -v 300000 && exec "$0" version' "$bin"
expect "help" 0 "usage: hybridrt <command>" -- "$bin" help
expect "--help" 0 "commands:" -- "$bin" --help
expect "help run" 0 "usage: hybridrt run SCRIPT.lua" -- "$bin" help run
expect "run --help" 0 "arg.opts" -- "$bin" run --help
expect "version --help" 0 "usage: hybridrt version" -- "$bin" version --help
# the GPU libraries: each line says what was found, or why not
expect "version names the CUDA driver" 0 "^CUDA: +(driver [0-9]+\.[0-9]+ |not usable, the CPU backend runs: )" -- "$bin" version
expect "version names NVRTC" 0 "^NVRTC: +([0-9]+\.[0-9]+ \(.*\); targets sm_[0-9]+|not found: )" -- "$bin" version
expect "version names cuBLAS" 0 "^cuBLAS: +([0-9]+\.[0-9]+\.[0-9]+ |not found: )" -- "$bin" version
expect "version with a missing NVRTC" 0 "^NVRTC: +not found: HYBRIDRT_NVRTC_LIBRARY=/nope/libnvrtc.so cannot be loaded" -- \
    env HYBRIDRT_NVRTC_LIBRARY=/nope/libnvrtc.so "$bin" version
expect "devices --help" 0 "usage: hybridrt devices" -- "$bin" devices --help
expect "devices without a driver" 1 "^no usable GPU: no NVIDIA driver: HYBRIDRT_CUDA_DRIVER_LIBRARY=/nope/libcuda.so.1" -- \
    env HYBRIDRT_CUDA_DRIVER_LIBRARY=/nope/libcuda.so.1 "$bin" devices
expect "devices with an argument" 2 "unexpected argument 'x'" -- "$bin" devices x
expect "devices --smoke without a driver" 1 "^no usable GPU: no NVIDIA driver" -- \
    env HYBRIDRT_CUDA_DRIVER_LIBRARY=/nope/libcuda.so.1 "$bin" devices --smoke
expect "no command" 2 "usage:" -- "$bin"
expect "unknown command" 2 "unknown command 'frobnicate'" -- "$bin" frobnicate
expect "run without script" 2 "missing the script" -- "$bin" run
expect "missing script" 1 "cannot open script 'nope.lua'" -- "$bin" run nope.lua

printf 'local x = = 1\n' >syntax.lua
expect "syntax error" 1 "syntax.lua:1:.*unexpected symbol" -- "$bin" run syntax.lua

printf 'local function f()\n  error("boom")\nend\nf()\n' >runtime.lua
expect "runtime error with file:line" 1 "runtime.lua:2: boom" -- "$bin" run runtime.lua
expect "runtime error traceback" 1 "stack traceback:" -- "$bin" run runtime.lua

printf 'local a, b = hr.zeros({2, 3}), hr.zeros({4})\nlocal c = a + b\n' >shapes.lua
expect "op error names op, shapes and line" 1 "shapes.lua:2: add: shapes \(2, 3\) and \(4\) cannot broadcast" -- "$bin" run shapes.lua

cat >opts.lua <<'LUA'
local o = arg.opts
assert(o.lr == 3e-4 and math.type(o.steps) == "integer" and o.steps == 10, "numbers typed")
assert(o.flag == true and o.off == false, "booleans typed")
assert(o.name == "runs/a" and o.expr == "a=b", "strings kept")
assert(arg[1] == "positional" and arg[0] == "opts.lua", "positional arguments")
assert(o.out == 7 and arg.opts_text.out == "007" and arg.opts_text.lr == "3e-4", "opts_text keeps the text")
-- a string option keeps its text as written (it once became "7": a run directory out=007 went to 7/)
local options = require "hybridrt.options"
local v = options.parse({{"out", "string", nil, "dir"}, {"lr", "number", 1, "lr"}}, {opts = {out = o.out, lr = o.lr},
                        opts_text = arg.opts_text}, "opts.lua")
assert(v.out == "007" and v.lr == 3e-4, "string option out=007 read as " .. tostring(v.out))
print("opts ok")
LUA
expect "key=value typed" 0 "opts ok" -- "$bin" run opts.lua lr=3e-4 steps=10 flag=true off=false name=runs/a expr=a=b out=007 positional

mkdir -p sub
printf 'return {answer = 42}\n' >sub/helper.lua
printf 'local h = require "helper"\nlocal hr2 = require "hybridrt"\nassert(hr2 == hr)\nprint("answer", h.answer)\n' >sub/main.lua
expect "sibling require" 0 "answer.42" -- "$bin" run sub/main.lua

expect "bundled gradcheck.lua: every op and a two-layer model" 0 "worst relative error [0-9.e-]+ over 60 parameters" -- "$bin" run gradcheck.lua
expect "bundled module" 0 "gradcheck ok" -- "$bin" run <(printf 'assert(type(require("hybridrt.gradcheck")) == "function")\nprint("gradcheck ok")\n')

mkdir -p override/hybridrt
printf 'local hr = require "hybridrt.core"\nhr.overridden = true\nreturn hr\n' >override/hybridrt/init.lua
printf 'print("overridden", hr.overridden)\n' >check_override.lua
expect "HYBRIDRT_LUA_PATH" 0 "overridden.true" -- env HYBRIDRT_LUA_PATH="$work/override" "$bin" run check_override.lua

expect "HYBRIDRT_LUA_PATH not a directory" 1 "HYBRIDRT_LUA_PATH is '/nonexistent', which is not a directory" -- env HYBRIDRT_LUA_PATH=/nonexistent "$bin" run check_override.lua

printf 'hr.set_check_nan(true)\nlocal x = hr.tensor({1, 1000})\nlocal y = hr.exp(x)\n' >nan.lua
expect "nan check names the op" 1 "nan check: op 'exp' produced inf" -- "$bin" run nan.lua
printf 'local x = hr.tensor({-1})\nlocal y = hr.exp(x * 1000)\nprint("fine", y:item())\n' >nan_env.lua
expect "HYBRIDRT_CHECK_NAN off by default" 0 "fine" -- "$bin" run nan_env.lua
printf 'local y = hr.exp(hr.tensor({1000}))\n' >nan_env2.lua
expect "HYBRIDRT_CHECK_NAN=1" 1 "nan check: op 'exp'" -- env HYBRIDRT_CHECK_NAN=1 "$bin" run nan_env2.lua

expect "CPU benchmark script runs" 0 "ssd_scan P=64 N=64 +[0-9.]+ +[0-9.]+" -- "$bin" run "$src/scripts/bench_cpu.lua" B=2 T=8 repeat=1

# tokenize: text to a token file of 2-byte ids (32-byte header), written all or nothing
printf 'hello tokens\n' >in1.txt
printf 'second file' >in2.txt
expect "tokenize" 0 "tokenize: 2 files, 24 bytes in, 24 tokens out" -- "$bin" tokenize in1.txt in2.txt -o tok.bin
size=$(wc -c <tok.bin 2>/dev/null || echo 0)
if [ "$size" -eq $((32 + 2 * 24)) ] && [ "$(head -c 8 tok.bin)" = "HRTOKENS" ]; then
    passed=$((passed + 1))
else
    failed=$((failed + 1))
    echo "FAIL tokenize output: $size bytes, want $((32 + 2 * 24)) starting HRTOKENS" >&2
fi
printf 'local ds = hr.open_tokens("tok.bin")\nprint("tokens", ds:len(), ds.vocab, string.char(ds:get(0), ds:get(23)))\n' >readtok.lua
expect "tokenize output reads back" 0 "tokens.24.256.he" -- "$bin" run readtok.lua
expect "tokenize from stdin" 0 "1 file, 5 bytes in" -- bash -c "printf abcde | '$bin' tokenize - -o stdin.bin"
expect "tokenize --help" 0 "usage: hybridrt tokenize \[options\] IN" -- "$bin" tokenize --help
expect "help tokenize" 0 "--tokenizer" -- "$bin" help tokenize
expect "tokenize missing input" 1 "cannot read 'nope.txt': No such file" -- "$bin" tokenize in1.txt nope.txt -o miss.bin
expect "tokenize without -o" 2 "missing the output file" -- "$bin" tokenize in1.txt
expect "tokenize without inputs" 2 "no input files" -- "$bin" tokenize -o x.bin
expect "tokenize unknown tokenizer" 1 "cannot load the tokenizer: gpt2: No such file" -- \
    "$bin" tokenize in1.txt -o x.bin --tokenizer gpt2
: >empty.txt
expect "tokenize empty input" 1 "input is empty" -- "$bin" tokenize empty.txt -o empty.bin
expect "tokenize unwritable output" 1 "cannot write 'nodir/x.bin'" -- "$bin" tokenize in1.txt -o nodir/x.bin
cp tok.bin keep.bin
expect "tokenize failure keeps the old output" 1 "cannot read" -- "$bin" tokenize in1.txt nope.txt -o keep.bin
if cmp -s tok.bin keep.bin && [ ! -e miss.bin ] && [ ! -e x.bin ] && [ ! -e empty.bin ] && ! ls ./*.tmp.* >/dev/null 2>&1; then
    passed=$((passed + 1))
else
    failed=$((failed + 1))
    echo "FAIL failed tokenize runs left files behind or changed keep.bin: $(ls)" >&2
fi

# hybridrt cache: warm (NVRTC, no GPU), list, stats, verify, clear
expect "cache --help" 0 "usage: hybridrt cache <action>" -- "$bin" cache --help
expect "cache without an action" 2 "usage: hybridrt cache" -- "$bin" cache
expect "cache unknown action" 2 "unknown action 'frob'" -- "$bin" cache frob
if "$bin" version | grep -qE "^NVRTC: +[0-9]"; then
    export HYBRIDRT_CACHE_DIR="$work/kcache"
    echo "some text, more than five hundred and twelve bytes? no: a short file is not a tar archive either" >"$work/plain.txt"
    # n: the kernels of every template for one target (the templates grow; the counts follow)
    n=$("$bin" cache warm --arch sm_80 --head-size 32 | sed -n 's/^warming .*: \([0-9]*\) kernels .*/\1/p')
    if [ -n "$n" ] && [ "$n" -ge 2 ] && [ "$(find "$work/kcache" -name '*.bin' | wc -l)" -eq "$n" ]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAIL cache warm: '$n' kernels, $(find "$work/kcache" -name '*.bin' | wc -l) entries" >&2
    fi
    expect "cache warm again" 0 "kernels: 0 compiled, $n already cached, 0 failed" -- "$bin" cache warm --arch sm_80 --head-size 32
    # --report: ptxas's figures for the same kernels, compiled in memory; a tsv has only the table on
    # stdout, and the cache is left as it was
    "$bin" cache warm --report-format tsv --arch sm_80 --head-size 32 >"$work/report.tsv" 2>/dev/null
    if head -1 "$work/report.tsv" | grep -q $'^arch\ttemplate\tkernel\tregisters\tstack_bytes' &&
        grep -qE $'^sm_80\twkv6.cu\thr_wkv6_forward<float, 32>\t[0-9]+\t[0-9]+\t0\t0\t512\t' "$work/report.tsv" &&
        [ "$(wc -l <"$work/report.tsv")" -eq $((n + 1)) ] && [ "$(find "$work/kcache" -name '*.bin' | wc -l)" -eq "$n" ]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAIL cache warm --report-format tsv: $(head -3 "$work/report.tsv"), $(wc -l <"$work/report.tsv") lines" >&2
    fi
    expect "cache warm --report, PTX only" 0 "kernels: 0 measured, 0 failed, $n PTX" -- \
        "$bin" cache warm --report --arch sm_999 --head-size 32
    expect "cache warm --report-format, bad" 2 "--report-format 'xml' is not table, tsv or md" -- \
        "$bin" cache warm --report-format xml
    expect "cache warm, a GPU newer than NVRTC" 0 "sm_999 is newer than NVRTC .* PTX for compute_" -- "$bin" cache warm --arch sm_999 --head-size 32
    expect "cache stats" 0 "entries: +$((2 * n))" -- "$bin" cache stats
    expect "cache list" 0 "fill.cu +hr_fill<double> +sm_80 +cubin" -- "$bin" cache list
    json=$(grep -l '"sm_80"' "$work"/kcache/v1/*/*.json | head -1)
    entry=${json%.json}.bin
    printf 'x' >>"$entry"
    expect "cache verify finds a bad entry" 1 "bad entry .*truncated or inconsistent sizes.*deleted" -- "$bin" cache verify
    expect "cache verify after deleting it" 0 "$((2 * n - 1)) entries checked, 0 bad" -- "$bin" cache verify
    expect "cache warm rebuilds it" 0 "kernels: 1 compiled, $((n - 1)) already cached" -- "$bin" cache warm --arch sm_80 --head-size 32
    expect "cache warm, Volta" 2 "sm_70 is older than NVRTC .*Volta needs NVRTC 12" -- "$bin" cache warm --arch sm_70
    expect "cache warm, not an arch" 2 "'banana' is not a GPU architecture" -- "$bin" cache warm --arch banana
    expect "cache warm, bad head size" 2 "head size '48' is not 32, 64 or 128" -- "$bin" cache warm --head-size 48
    expect "cache warm, unknown option" 2 "unknown option '--fast'" -- "$bin" cache warm --fast
    expect "cache export" 0 "exported $((2 * n)) entries" -- "$bin" cache export "$work/kernels.tar"
    expect "cache import elsewhere" 0 "imported $((2 * n)) entries" -- \
        env HYBRIDRT_CACHE_DIR="$work/kcache2" "$bin" cache import "$work/kernels.tar"
    expect "imported kernels are cached" 0 "kernels: 0 compiled, $n already cached" -- \
        env HYBRIDRT_CACHE_DIR="$work/kcache2" "$bin" cache warm --arch sm_80 --head-size 32
    expect "cache import, no file" 1 "cannot open $work/none.tar" -- "$bin" cache import "$work/none.tar"
    expect "cache import, not a tar" 1 "not a tar archive" -- "$bin" cache import "$work/plain.txt"
    expect "cache export, no path" 2 "needs one archive path" -- "$bin" cache export
    expect "cache stats shows the cap" 0 "cap: +1000000 bytes" -- env HYBRIDRT_CACHE_MAX_BYTES=1000000 "$bin" cache stats
    expect "cache, a bad cap" 1 "HYBRIDRT_CACHE_MAX_BYTES=lots is not a byte count" -- \
        env HYBRIDRT_CACHE_MAX_BYTES=lots "$bin" cache stats
    # --tuned: the variants a tuned GPU loads in place of the defaults they replace (tests/cli/make_tuning_db.lua:
    # BLOCK 128 and 512 for one norm kernel and CHUNK 32 for the WKV6 backward replace 2 defaults: 3 new kernels)
    "$bin" run "$src/tests/cli/make_tuning_db.lua" "$work/test.tune" >/dev/null
    expect "cache warm --tuned" 0 "kernels: 3 compiled, $((n - 2)) already cached, 0 failed" -- \
        "$bin" cache warm --tuned "$work/test.tune" --head-size 32
    expect "cache warm --tuned names the database" 0 "tuned: .*test.tune \(Test GPU, sm_80, 4 records\)" -- \
        "$bin" cache warm --tuned "$work/test.tune" --head-size 32
    expect "the tuned variants are cached" 0 "hr_group_norm_forward<float, 512> +sm_80" -- "$bin" cache list
    expect "cache warm --tuned, no file" 1 "none.tune: cannot be read" -- "$bin" cache warm --tuned "$work/none.tune"
    expect "cache warm --tuned, not a database" 1 "not a hybridrt tuning database" -- \
        "$bin" cache warm --tuned "$work/plain.txt"
    expect "cache clear" 0 "removed $((2 * n + 3)) entries" -- "$bin" cache clear
    expect "cache list, empty" 0 "no kernels cached" -- "$bin" cache list
    : >"$work/plainfile"
    expect "cache in a directory that cannot be made" 0 "not writable.*compiled in memory" -- \
        env HYBRIDRT_CACHE_DIR="$work/plainfile/cache" "$bin" cache warm --arch sm_80
    unset HYBRIDRT_CACHE_DIR
else
    echo "cli: SKIPPED the cache warm tests: NVRTC not found"
fi

# hybridrt tune: refused without a GPU (after its options are checked)
expect "tune --help" 0 "usage: hybridrt tune" -- "$bin" tune --help
expect "tune without a GPU" 1 "hybridrt tune: needs a GPU: device=cuda: cuda:0: no NVIDIA driver" -- \
    env HYBRIDRT_CUDA_DRIVER_LIBRARY=/nope/libcuda.so.1 "$bin" tune
expect "tune, a bad budget" 1 "budget must look like 90s, 10m or 1h" -- "$bin" tune --budget soon
expect "tune, an unknown option" 2 "unknown option '--fast'" -- "$bin" tune --fast
expect "tune, a missing value" 2 "--budget needs a value" -- "$bin" tune --budget

echo "cli: $passed checks passed, $failed failed"
[ "$failed" -eq 0 ]
