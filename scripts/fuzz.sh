#!/usr/bin/env bash
# The libFuzzer targets of tests/fuzz (docs/fuzzing.md), built with clang, AddressSanitizer and
# UndefinedBehaviorSanitizer into build-fuzz/ (configured and built when needed).
#
#   scripts/fuzz.sh TARGET [MINUTES] [-- LIBFUZZER_ARGS...]
#       runs one target (fuzz_tar, or just tar) for MINUTES (default 5) on its seed corpus
#       tests/fuzz/corpus/TARGET (read only) plus a working corpus build-fuzz/corpus/TARGET that keeps
#       what it finds between runs; a finding is written to build-fuzz/findings/TARGET/
#   scripts/fuzz.sh --ci [RUNS]
#       builds every target and runs each for RUNS executions (default 20000, at most FUZZ_MAX_SECONDS
#       each, default 120) from its seed corpus, FUZZ_JOBS at a time (default: the cores); fails on any
#       finding (a crash, a sanitizer report, a leak, a broken property, a slow input) and prints it.
#       CI runs this after the test suites (.ci/run).
#   scripts/fuzz.sh --build      only build
#   scripts/fuzz.sh --list       the targets
# FUZZ_SEED: libFuzzer's random seed (0: a new one each run, printed in the logs). --ci uses 1 unless
# told otherwise, so that a CI run is repeatable; a run of one target, 0.
set -uo pipefail
cd "$(dirname "$0")/.."
build=build-fuzz
cores=$(nproc) # before OMP_NUM_THREADS=1 below, which nproc would report instead
targets=()
for src in tests/fuzz/fuzz_*.c; do targets+=("$(basename "$src" .c)"); done

die() {
    echo "fuzz: $*" >&2
    exit 2
}

build_targets() {
    command -v clang >/dev/null || die "clang is not installed (scripts/setup.sh installs clang, libclang-rt-dev, libomp-dev)"
    if ! grep -qs '^HR_FUZZ:BOOL=ON' "$build/CMakeCache.txt"; then
        mkdir -p "$build"
        cmake -S . -B "$build" -DHR_FUZZ=ON -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug >"$build/configure.log" 2>&1 ||
            { cat "$build/configure.log"; die "configuring $build failed"; }
    fi
    cmake --build "$build" -j"$cores" --target fuzz_all >"$build/build.log" 2>&1 ||
        { tail -40 "$build/build.log"; die "building the fuzz targets failed (full log: $build/build.log)"; }
}

# The environment of every run: one OpenMP thread, sanitizers that stop at the first report with a
# stack trace.
export OMP_NUM_THREADS=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
common=(-timeout=25 -rss_limit_mb=2048 -print_final_stats=1)
[ "${1:-}" = --ci ] && common+=(-seed="${FUZZ_SEED:-1}") || common+=(-seed="${FUZZ_SEED:-0}")

run_ci() {
    local runs=${1:-20000} max_seconds=${FUZZ_MAX_SECONDS:-120} jobs=${FUZZ_JOBS:-$cores}
    local start=$SECONDS logs="$build/ci"
    build_targets
    echo "fuzz: built ${#targets[@]} targets in $((SECONDS - start)) s; running each for $runs executions (at most ${max_seconds} s), $jobs at a time"
    rm -rf "$logs"
    mkdir -p "$logs"
    local t running=0
    for t in "${targets[@]}"; do
        mkdir -p "$logs/$t.corpus" "$logs/$t.findings"
        # the working corpus first (new inputs go there), the committed seeds second (read only)
        ( "$build/tests/fuzz/$t" "${common[@]}" -runs="$runs" -max_total_time="$max_seconds" \
              -artifact_prefix="$logs/$t.findings/" "$logs/$t.corpus" "tests/fuzz/corpus/$t" >"$logs/$t.log" 2>&1
          echo $? >"$logs/$t.status" ) &
        running=$((running + 1))
        if [ "$running" -ge "$jobs" ]; then
            wait -n
            running=$((running - 1))
        fi
    done
    wait
    local failed=0
    printf '\n%-22s %10s %8s  %s\n' target executions seconds result
    for t in "${targets[@]}"; do
        local status execs secs result
        status=$(cat "$logs/$t.status")
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/$t.log")
        secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$logs/$t.log")
        result=ok
        if [ "$status" -ne 0 ] || [ -n "$(ls -A "$logs/$t.findings")" ]; then
            result="FINDING (exit $status): $(ls "$logs/$t.findings" | head -1)"
            failed=1
        fi
        printf '%-22s %10s %8s  %s\n' "$t" "${execs:-?}" "${secs:-?}" "$result"
    done
    for t in "${targets[@]}"; do
        if [ "$(cat "$logs/$t.status")" -ne 0 ] || [ -n "$(ls -A "$logs/$t.findings")" ]; then
            echo
            echo "---- $t (log $logs/$t.log; reproduce: $build/tests/fuzz/$t $logs/$t.findings/FILE):"
            grep -E -A30 'ERROR|runtime error|property failed|Timeout|out-of-memory|leak' "$logs/$t.log" | head -60
        fi
    done
    echo
    echo "fuzz: ${#targets[@]} targets, $((SECONDS - start)) s in all: $([ "$failed" -eq 0 ] && echo 'no findings' || echo 'FINDINGS')"
    return "$failed"
}

run_one() {
    local t=$1 minutes=${2:-5}
    shift 2 2>/dev/null || shift $#
    [ "${1:-}" = "--" ] && shift
    [[ "$t" == fuzz_* ]] || t="fuzz_$t"
    [ -f "tests/fuzz/$t.c" ] || die "no target $t (scripts/fuzz.sh --list)"
    [[ "$minutes" =~ ^[1-9][0-9]*$ ]] || die "MINUTES must be a whole number of at least 1, got '$minutes'"
    build_targets
    mkdir -p "$build/corpus/$t" "$build/findings/$t"
    local before
    before=$(ls "$build/findings/$t" | wc -l)
    echo "fuzz: $t for $minutes minutes; new inputs in $build/corpus/$t, findings in $build/findings/$t/"
    "$build/tests/fuzz/$t" "${common[@]}" -max_total_time=$((minutes * 60)) -artifact_prefix="$build/findings/$t/" \
        "$@" "$build/corpus/$t" "tests/fuzz/corpus/$t"
    local status=$?
    echo "fuzz: $t exited with $status; new findings: $(($(ls "$build/findings/$t" | wc -l) - before)) (a fixed one's" \
         "reproducer goes into tests/fuzz/corpus/$t/finding-NAME)"
    return "$status"
}

case "${1:-}" in
    --ci) run_ci "${2:-}" ;;
    --build) build_targets && echo "fuzz: built ${targets[*]} in $build/tests/fuzz/" ;;
    --list) printf '%s\n' "${targets[@]}" ;;
    "" | -h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//' ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) run_one "$@" ;;
esac
