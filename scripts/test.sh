#!/usr/bin/env bash
# Builds and runs every test (C kernel tests, core tests, Lua tests, CLI tests) through ctest.
# The closing lines report the counts.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
ctest --test-dir build --output-on-failure -j"$(nproc)" "$@"
