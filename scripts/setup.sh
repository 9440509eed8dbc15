#!/usr/bin/env bash
# Installs what a fresh Debian/Ubuntu machine needs to build hybridrt (skips what is present).
set -euo pipefail
# libopenblas-openmp-dev: OpenBLAS on OpenMP threads, shared with the kernels (see CMakeLists.txt)
# libcjson-dev: the JSON header of safetensors files (runtime/io)
# valgrind: the memcheck test suites (scripts/test.sh --memcheck)
# clang, libclang-rt-dev (libFuzzer and the sanitizers), libomp-dev (clang's OpenMP): the fuzz targets
# (scripts/fuzz.sh, docs/fuzzing.md)
packages=(build-essential cmake pkg-config liblua5.4-dev libopenblas-dev libopenblas-openmp-dev libcjson-dev valgrind
          clang libclang-rt-dev libomp-dev)
missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}"
else
    echo "setup: all packages present (${packages[*]})"
fi
