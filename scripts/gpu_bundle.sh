#!/usr/bin/env bash
# Packs the built binary with the shared libraries it needs beyond glibc (Lua, cJSON, OpenBLAS and its
# Fortran runtime, OpenMP) into gpu-bundle/, so it runs on a GPU machine whose image lacks them (the
# device tool's machines: carry gpu-bundle, then `bash scripts/gpu_validate.sh gpu-bundle`).
#   bash scripts/gpu_bundle.sh [BUILD_DIR]      (default build/)
set -eu
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
[ -x "$BUILD/hybridrt" ] || { echo "no $BUILD/hybridrt: build first (bash scripts/build.sh)" >&2; exit 1; }
rm -rf gpu-bundle
mkdir -p gpu-bundle/libs
cp "$BUILD/hybridrt" gpu-bundle/
# every resolved library but the C library's own (those come with any Linux)
ldd "$BUILD/hybridrt" | awk '/=> \// { print $3 }' | while read -r lib; do
  case "$(basename "$lib")" in
    libc.so.*|libm.so.*|libdl.so.*|libpthread.so.*|librt.so.*|ld-linux*) ;;
    *) cp -L "$lib" gpu-bundle/libs/ ;;
  esac
done
echo "gpu-bundle: $(ls gpu-bundle/libs | tr '\n' ' ')($(du -sh gpu-bundle | cut -f1))"
