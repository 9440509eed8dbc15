#!/usr/bin/env bash
# hybridrt tokenize with byte-level BPE: training, encoding with a tokenizer.json, separators,
# directories, threads, and every bad input leaving no output behind. Usage: test_tokenize.sh hybridrt
set -u
source "$(dirname "$0")/expect.sh" "$1"

corpus="$src/data/tinyshakespeare.txt"
head -c 300000 "$corpus" >part.txt

# training writes the tokenizer beside the output, then encodes with it
expect "train-bpe" 0 "train-bpe: 300000 input bytes, vocab 1000 \(740 merges" -- \
    "$bin" tokenize --train-bpe 1000 part.txt -o sh.bin -q
check "train-bpe wrote sh.tokenizer.json" test -s sh.tokenizer.json
expect "train-bpe summary" 0 "tokens out \(sh.tokenizer.json, vocab 1000\)" -- \
    "$bin" tokenize --train-bpe 1000 part.txt -o sh.bin -q --force
expect "train-bpe refuses to overwrite" 1 "'sh.tokenizer.json' exists: pass --force" -- \
    "$bin" tokenize --train-bpe 1000 part.txt -o sh.bin
expect "train-bpe to a named file" 0 "-> mine.json" -- "$bin" tokenize --train-bpe 600 --tokenizer mine.json \
    --min-frequency 3 --special '<s>,</s>' part.txt -o mine.bin -q
printf 'local t = hr.tokenizer.load("mine.json")\nprint("special", t:id("<s>"), t:id("</s>"), t.eos, t.vocab_size)\n' >special.lua
expect "special tokens come first" 0 "special.0.1.1.600" -- "$bin" run special.lua

# encoding with the file gives the same ids, on any number of threads
expect "encode with tokenizer.json" 0 "300000 bytes in" -- "$bin" tokenize --tokenizer sh.tokenizer.json part.txt -o sh2.bin
check "same ids as the training run" cmp sh.bin sh2.bin
"$bin" tokenize --tokenizer sh.tokenizer.json "$corpus" -o t1.bin --threads 1 -q 2>/dev/null
"$bin" tokenize --tokenizer sh.tokenizer.json "$corpus" -o t2.bin --threads 2 -q 2>/dev/null
"$bin" tokenize --tokenizer sh.tokenizer.json "$corpus" -o t3.bin --threads 3 -q 2>/dev/null
check "1, 2 and 3 threads give the same ids" bash -c "cmp t1.bin t2.bin && cmp t1.bin t3.bin"

# separators between files (<eos> by default), directories in name order
printf 'First file.\n' >a.txt
printf 'Second file.\n' >b.txt
cat >count.lua <<'LUA'
local t = hr.tokenizer.load("sh.tokenizer.json")
local ds = hr.open_tokens(arg.opts.file)
local n = ds:len()
local ids = {}
for i = 0, n - 1 do ids[#ids + 1] = ds:get(i) end
print(string.format("n=%d eos_at=%s text=[%s]", n, tostring(ds:get(#t:encode("First file.\n"))),
                    (t:decode(ids):gsub("\n", "|"))))
LUA
"$bin" tokenize --tokenizer sh.tokenizer.json a.txt b.txt -o ab.bin -q 2>/dev/null
expect "<eos> between files" 0 'eos_at=3 text=\[First file.\|<eos>Second file.\|\]' -- "$bin" run count.lua file=ab.bin
"$bin" tokenize --tokenizer sh.tokenizer.json a.txt b.txt -o ab0.bin --separator none -q 2>/dev/null
expect "--separator none" 0 'text=\[First file.\|Second file.\|\]' -- "$bin" run count.lua file=ab0.bin
mkdir docs && cp a.txt docs/1.txt && cp b.txt docs/2.txt && touch docs/.hidden
"$bin" tokenize --tokenizer sh.tokenizer.json docs -o dir.bin -q 2>/dev/null
check "a directory is its files in name order" cmp ab.bin dir.bin
expect "separator the tokenizer lacks" 1 "--separator <sep>: the tokenizer \(sh.tokenizer.json\) has no such token" -- \
    "$bin" tokenize --tokenizer sh.tokenizer.json a.txt b.txt -o bad.bin --separator '<sep>'

# bad tokenizer files: a message naming the field, no output
printf '{"model": {"type": "BPE", "vocab": {"a": 0' >trunc.json
printf '{"model": {"type": "BPE", "merges": []}, "pre_tokenizer": {"type": "ByteLevel"}}' >novocab.json
printf '{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": [["a", "c"]]}, "pre_tokenizer": {"type": "ByteLevel"}}' >unknown.json
printf '{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": [["a", "b"]]}, "pre_tokenizer": {"type": "ByteLevel"}}' >nomerged.json
printf '{"model": {"type": "WordPiece", "vocab": {"a": 0}}, "pre_tokenizer": null}' >wordpiece.json
printf '{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "Whitespace"}}' >ws.json
printf '{"added_tokens": [{"id": 5}], "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "ByteLevel"}}' >added.json
printf '{"model": {"type": "BPE", "vocab": {"a": -3}, "merges": []}, "pre_tokenizer": {"type": "ByteLevel"}}' >negid.json
: >empty.json
expect "truncated JSON" 1 "trunc.json: not valid JSON \(near byte" -- "$bin" tokenize --tokenizer trunc.json a.txt -o x.bin
expect "no vocab" 1 "novocab.json: model.vocab: missing" -- "$bin" tokenize --tokenizer novocab.json a.txt -o x.bin
expect "merge of an unknown token" 1 "unknown.json: model.merges\[0\]: unknown token 'c'" -- \
    "$bin" tokenize --tokenizer unknown.json a.txt -o x.bin
expect "merge whose result is missing" 1 "model.merges\[0\]: merge 0 \(a \+ b\): the merged token 'ab' is not in the vocab" -- \
    "$bin" tokenize --tokenizer nomerged.json a.txt -o x.bin
expect "WordPiece" 1 "unsupported: WordPiece model" -- "$bin" tokenize --tokenizer wordpiece.json a.txt -o x.bin
expect "Whitespace pre-tokenizer" 1 "unsupported: pre_tokenizer Whitespace" -- "$bin" tokenize --tokenizer ws.json a.txt -o x.bin
expect "added token without content" 1 "added_tokens\[0\].content: missing" -- "$bin" tokenize --tokenizer added.json a.txt -o x.bin
expect "negative id" 1 "model.vocab: token 'a' has no valid id" -- "$bin" tokenize --tokenizer negid.json a.txt -o x.bin
expect "empty tokenizer file" 1 "empty.json: empty file" -- "$bin" tokenize --tokenizer empty.json a.txt -o x.bin
printf '{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false}}' >tiny.json
expect "a byte the vocab lacks" 1 "a.txt: byte 0x46 has no token in the vocab and the tokenizer has no unk_token" -- \
    "$bin" tokenize --tokenizer tiny.json a.txt -o x.bin
: >empty.txt
expect "train on empty input" 1 "the input is empty: nothing to train on" -- "$bin" tokenize --train-bpe 300 empty.txt -o x.bin
expect "train from stdin" 1 "standard input \(-\) cannot be one" -- bash -c "printf abc | '$bin' tokenize --train-bpe 300 - -o x.bin"
expect "--train-bpe needs a number" 2 "--train-bpe needs a vocab size" -- "$bin" tokenize --train-bpe lots a.txt -o x.bin
expect "--threads 0" 2 "--threads needs an integer in 1..1024" -- "$bin" tokenize --threads 0 a.txt -o x.bin
expect "--force without training" 2 "go with --train-bpe" -- "$bin" tokenize --force a.txt -o x.bin
if [ ! -e x.bin ] && [ ! -e x.tokenizer.json ] && [ ! -e bad.bin ] && ! ls ./*.tmp.* >/dev/null 2>&1; then
    passed=$((passed + 1))
else
    failed=$((failed + 1))
    echo "FAIL failed runs left files behind: $(ls)" >&2
fi

echo "cli.tokenize: $passed checks passed, $failed failed"
[ "$failed" -eq 0 ]
