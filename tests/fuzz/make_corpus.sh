#!/usr/bin/env bash
# Regenerates the seed corpora tests/fuzz/corpus/<target>/ with the project's own tools (docs/fuzzing.md):
#   bash tests/fuzz/make_corpus.sh [HYBRIDRT]     (default build/hybridrt; the cache seeds need NVRTC)
# tokenizer.json from `hybridrt tokenize --train-bpe`, token files from `tokenize` and hr.write_tokens,
# safetensors files and checkpoints from the Lua library (make_corpus.lua), a kernel cache entry from
# `hybridrt cache warm` and an archive of it from `cache export`, a tuning database from
# tests/cli/make_tuning_db.lua, the @tune lines of kernel_src/. It replaces only the files it writes:
# the hand-written seeds beside them (slightly invalid inputs, options, and the reproducers of past
# findings, finding-*) stay.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=$(realpath "${1:-build/hybridrt}")
corpus=tests/fuzz/corpus
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for t in tests/fuzz/fuzz_*.c; do mkdir -p "$corpus/$(basename "$t" .c)"; done

# BPE on the first 4 KB of the bundled corpus: 300 tokens, then the same with add_prefix_space
head -c 4096 data/tinyshakespeare.txt >"$tmp/text.txt"
"$bin" tokenize -q --train-bpe 300 "$tmp/text.txt" -o "$tmp/bpe.bin"
"$bin" tokenize -q --train-bpe 270 --add-prefix-space --special '<eos>' "$tmp/text.txt" -o "$tmp/prefix.bin"
cp "$tmp/bpe.tokenizer.json" "$corpus/fuzz_tokenizer_json/trained-300.json"
cp "$tmp/prefix.tokenizer.json" "$corpus/fuzz_tokenizer_json/prefix-space-270.json"
head -c 300 data/tinyshakespeare.txt >"$tmp/short.txt"
"$bin" tokenize -q --tokenizer "$tmp/bpe.tokenizer.json" "$tmp/short.txt" -o "$tmp/short.bin"
"$bin" tokenize -q "$tmp/short.txt" -o "$corpus/fuzz_tokenfile/bytes.bin"
"$bin" run tests/fuzz/make_corpus.lua "$corpus" "$tmp/bpe.tokenizer.json" "$tmp/short.bin" >/dev/null

# the smallest kernel of one architecture's warm cache, alone in a cache, exported
HYBRIDRT_CACHE_DIR="$tmp/warm" "$bin" cache warm --arch sm_75 --head-size 32 >/dev/null
entry=$(find "$tmp/warm" -name '*.bin' -printf '%s %p\n' | sort -n | head -1 | cut -d' ' -f2)
key=$(basename "$entry" .bin)
mkdir -p "$tmp/one/v1/${key:0:2}"
cp "$entry" "${entry%.bin}.json" "$tmp/one/v1/${key:0:2}/"
cp "$entry" "$corpus/fuzz_cache_entry/entry.bin"
head -c 100 "$entry" >"$corpus/fuzz_cache_entry/entry.bin-truncated"
HYBRIDRT_CACHE_DIR="$tmp/one" "$bin" cache export "$tmp/one.tar" >/dev/null
cp "$tmp/one.tar" "$corpus/fuzz_tar/export.tar"
head -c 1024 "$tmp/one.tar" >"$corpus/fuzz_tar/export.tar-truncated"

# a tuning database as `hybridrt tune` writes it
"$bin" run tests/cli/make_tuning_db.lua "$corpus/fuzz_tune_db/test.tune" >/dev/null

# the @tune lines of the templates, each with the line after it
for cu in kernel_src/*.cu; do
    if grep -q '// @tune' "$cu"; then
        grep -A1 '// @tune' "$cu" | grep -v '^--$' >"$corpus/fuzz_tune_space/$(basename "$cu" .cu).cu"
    fi
done

echo "make_corpus: $(find "$corpus" -type f | wc -l) files, $(find "$corpus" -type f -exec cat {} + | wc -c) bytes in $corpus"
