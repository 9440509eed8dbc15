# Shared by the CLI test scripts (sourced): a scratch directory, pass/fail counters, and
#   expect NAME WANT_STATUS PATTERN -- COMMAND...   runs it, checks the status and that its output matches PATTERN
#   check NAME COMMAND...                           passes when the command succeeds
# Sets bin (the binary, absolute), src (the checkout) and work (the scratch directory, the current one).
bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
passed=0 failed=0

expect() {
    local name=$1 want=$2 pattern=$3
    shift 4
    local out status
    out=$("$@" 2>&1)
    status=$?
    if [ "$status" -eq "$want" ] && grep -qE -- "$pattern" <<<"$out"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        printf 'FAIL %s: status %s (want %s), output:\n%s\n' "$name" "$status" "$want" "$out" >&2
    fi
}

check() {
    local name=$1
    shift
    if "$@" >/dev/null 2>&1; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAIL $name" >&2
    fi
}
