#!/usr/bin/env bash
# Builds and runs every test suite (C kernel tests, core tests, Lua tests, CLI tests) through ctest.
# Prints one line per suite, the failures if any, and a closing line with the counts of suites and
# of individual checks. The full output is kept in build/test-output.log.
#   --memcheck   also run the suites under valgrind (a few minutes; CI does)
# Other arguments go to ctest.
set -uo pipefail
cd "$(dirname "$0")/.."
select=(-LE memcheck)
if [ "${1:-}" = "--memcheck" ]; then
    select=()
    shift
fi
bash scripts/build.sh || exit 1
log=build/test-output.log
ctest --test-dir build -V -j"$(nproc)" "${select[@]}" "$@" >"$log" 2>&1
status=$?
grep -E '^ *[0-9]+/[0-9]+ Test +#' "$log"
if [ "$status" -ne 0 ]; then
    # ctest -V prefixes each test's output with its number: show the output of every failed suite
    for n in $(sed -n 's/^[[:space:]]*\([0-9]\+\) - .*(.*)$/\1/p' "$log"); do
        echo
        echo "---- output of failed test #$n:"
        grep -E "^$n: " "$log" | sed "s/^$n: //" | tail -40
    done
    echo
    echo "(full output in $log)"
fi
awk -v status="$status" '
    /^ *[0-9]+\/[0-9]+ Test +#/ { suites++; if ($0 ~ /Passed/) suites_ok++ }
    /[a-z.]+: [0-9]+ checks passed, [0-9]+ failed/ {
        for (i = 1; i <= NF; i++) {
            if ($(i) == "checks" && $(i + 1) == "passed,") { passed += $(i - 1); failed += $(i + 2) }
        }
    }
    END { printf "\ntests: %d of %d suites passed; %d checks passed, %d failed\n", suites_ok, suites, passed, failed }
' "$log"
exit "$status"
