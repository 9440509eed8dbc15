#!/usr/bin/env python3
"""Checks that hybridrt's byte-level BPE agrees with Hugging Face `tokenizers`, exactly:

  1. training: the same corpus and settings give the same vocab, merges and special tokens
     (hybridrt tokenize --train-bpe vs ByteLevelBPETokenizer.train), for two configurations;
  2. files: each side loads the other's tokenizer.json, and all four (encoder, file) pairs give the
     same ids for the whole corpus;
  3. encoding: thousands of random strings (many scripts, whitespace kinds, digits, marks, emoji,
     contractions, <eos>) get the same ids from both, and HF decodes hybridrt's ids back to the string.

usage: check_hf_tokenizers.py path/to/hybridrt [--corpus FILE] [--vocab 16000] [--fuzz 3000]
Prints "hf.tokenizers: N checks passed, M failed"; exit status 1 when anything differs.
Needs `pip install tokenizers` (scripts/setup_hf.sh installs the version the tables come from).
"""
import argparse
import json
import os
import random
import struct
import subprocess
import sys
import tempfile
import time

from tokenizers import Tokenizer
from tokenizers.implementations import ByteLevelBPETokenizer

passed = failed = 0


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print("FAIL " + what, file=sys.stderr)


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit("command failed (%d): %s\n%s%s" % (r.returncode, " ".join(cmd), r.stdout, r.stderr))
    return r.stdout + r.stderr


def read_token_file(path):
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"HRTOKENS", path
    width, n = struct.unpack_from("<I", data, 12)[0], struct.unpack_from("<Q", data, 24)[0]
    return list(struct.unpack_from("<%d%s" % (n, "H" if width == 2 else "I"), data, 32))


# Lua run by hybridrt: encodes length-prefixed strings, one line of comma-separated ids per string.
ENCODE_LUA = r'''
local hr = require "hybridrt"
local tok = hr.tokenizer.load(arg.opts.tok)
local f = assert(io.open(arg.opts.input, "rb")); local data = f:read("a"); f:close()
local out = assert(io.open(arg.opts.output, "wb"))
local pos = 1
while pos <= #data do
  local n = string.unpack("<I4", data, pos)
  local s = data:sub(pos + 4, pos + 3 + n)
  pos = pos + 4 + n
  out:write(table.concat(tok:encode(s), ","), "\n")
end
out:close()
'''

SCRIPTS = [(0x41, 0x7A), (0xC0, 0x24F), (0x370, 0x3FF), (0x400, 0x4FF), (0x590, 0x5FF), (0x600, 0x6FF),
           (0x900, 0x97F), (0x300, 0x36F), (0x4E00, 0x4E80), (0xAC00, 0xAC80), (0x3040, 0x30FF), (0x1F300, 0x1F64F),
           (0x2000, 0x206F), (0x20A0, 0x20CF), (0x2150, 0x218F), (0xFF00, 0xFFEF), (0xE000, 0xE010), (0x10000, 0x10100),
           (0x1D400, 0x1D4FF), (0xE01F0, 0xE01FF)]
PIECES = [" ", "  ", "\t", "\n", "\r\n", "\n\n", " \n ", "\u00a0", "\u3000", "\u2028", "\u0085", "\u200b", "'s", "'t",
          "'re", "'LL", "''", " '", "<eos>", "<eo", "eos>", "0", "42", " 3.14", "\u0661\u0662", "\u00bd", "...", "!?",
          "the", " the", "The", "ing", " Hello", "caf\u00e9", "e\u0301", "\U0001F600", "\U0001F468\u200d\U0001F469"]


def random_string(rng):
    out = []
    for _ in range(rng.randint(0, 40)):
        r = rng.random()
        if r < 0.45:
            out.append(rng.choice(PIECES))
        else:
            lo, hi = rng.choice(SCRIPTS)
            out.append("".join(chr(rng.randint(lo, hi)) for _ in range(rng.randint(1, 6))))
    return "".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("hybridrt")
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--corpus", default=os.path.join(here, "..", "data", "tinyshakespeare.txt"))
    ap.add_argument("--vocab", type=int, default=16000)
    ap.add_argument("--fuzz", type=int, default=3000)
    a = ap.parse_args()
    import tokenizers
    print("Hugging Face tokenizers %s; corpus %s (%d bytes)" % (tokenizers.__version__, a.corpus, os.path.getsize(a.corpus)))
    text = open(a.corpus, encoding="utf-8").read()
    work = tempfile.mkdtemp(prefix="hf-check-")
    configs = [
        dict(name="vocab %d, min_frequency 2, <pad> <unk> <bos> <eos>" % a.vocab, vocab=a.vocab, minf=2,
             special=["<pad>", "<unk>", "<bos>", "<eos>"], prefix=False),
        dict(name="vocab %d, min_frequency 1, add_prefix_space, <|endoftext|>" % a.vocab, vocab=a.vocab, minf=1,
             special=["<|endoftext|>"], prefix=True),
    ]
    files = {}
    for i, c in enumerate(configs):
        hf_json, hr_json, hr_bin = ["%s/%s%d.%s" % (work, k, i, ext) for k, ext in
                                    (("hf", "json"), ("hr", "json"), ("hr", "bin"))]
        t0 = time.time()
        hf = ByteLevelBPETokenizer(add_prefix_space=c["prefix"])
        hf.train([a.corpus], vocab_size=c["vocab"], min_frequency=c["minf"], special_tokens=c["special"],
                 show_progress=False)
        hf.save(hf_json)
        hf_s = time.time() - t0
        cmd = [a.hybridrt, "tokenize", "-q", "--train-bpe", str(c["vocab"]), "--min-frequency", str(c["minf"]),
               "--special", ",".join(c["special"]), "--tokenizer", hr_json, a.corpus, "-o", hr_bin]
        if c["prefix"]:
            cmd.append("--add-prefix-space")
        t0 = time.time()
        run(cmd)
        hr_s = time.time() - t0
        A, B = json.load(open(hf_json)), json.load(open(hr_json))
        print("training (%s): tokenizers %.2f s, hybridrt %.2f s (training and encoding), vocab %d / %d" %
              (c["name"], hf_s, hr_s, len(A["model"]["vocab"]), len(B["model"]["vocab"])))
        check(A["model"]["vocab"] == B["model"]["vocab"], "training (%s): vocab differs" % c["name"])
        check(A["model"]["merges"] == B["model"]["merges"], "training (%s): merges differ" % c["name"])
        check(A["added_tokens"] == B["added_tokens"], "training (%s): added tokens differ" % c["name"])
        check(A["pre_tokenizer"] == B["pre_tokenizer"], "training (%s): pre_tokenizer differs" % c["name"])
        files[i] = (hf_json, hr_json, hr_bin)

    # the whole corpus, every encoder with every file
    for i, (hf_json, hr_json, hr_bin) in files.items():
        ref = Tokenizer.from_file(hf_json).encode(text).ids
        ok = [Tokenizer.from_file(hr_json).encode(text).ids == ref, read_token_file(hr_bin) == ref]
        for k, path in enumerate((hf_json, hr_json)):
            out = "%s/corpus-%d-%d.bin" % (work, i, k)
            run([a.hybridrt, "tokenize", "-q", "--tokenizer", path, a.corpus, "-o", out])
            ok.append(read_token_file(out) == ref)
        names = ["tokenizers with hybridrt's file", "hybridrt's training run", "hybridrt with tokenizers' file",
                 "hybridrt with its own file"]
        for good, name in zip(ok, names):
            check(good, "corpus (%s): %s gives other ids than tokenizers with its own file" % (configs[i]["name"], name))
        print("corpus (%s): %d ids, %s" % (configs[i]["name"], len(ref),
                                          "the same from all four (encoder, file) pairs" if all(ok) else "DIFFERENT"))

    # random strings
    rng = random.Random(1234)
    strings = [random_string(rng) for _ in range(a.fuzz)]
    blob = b"".join(struct.pack("<I", len(s.encode())) + s.encode() for s in strings)
    with open(work + "/fuzz.bin", "wb") as f:
        f.write(blob)
    with open(work + "/encode.lua", "w") as f:
        f.write(ENCODE_LUA)
    for i, (hf_json, hr_json, _) in files.items():
        run([a.hybridrt, "run", work + "/encode.lua", "tok=" + hr_json, "input=" + work + "/fuzz.bin",
             "output=" + work + "/fuzz.ids"])
        ours = [[int(x) for x in line.split(",")] if line else [] for line in
                open(work + "/fuzz.ids").read().split("\n")[:-1]]
        hf = Tokenizer.from_file(hf_json)
        theirs = [e.ids for e in hf.encode_batch(strings)]
        diff = [k for k in range(len(strings)) if ours[k] != theirs[k]]
        for k in diff[:3]:
            print("  differs: %r\n    hybridrt %s\n    tokenizers %s" % (strings[k], ours[k], theirs[k]), file=sys.stderr)
        check(not diff, "random strings (%s): %d of %d differ" % (configs[i]["name"], len(diff), len(strings)))
        if not configs[i]["prefix"]:
            bad = [k for k in range(len(strings)) if hf.decode(ours[k], skip_special_tokens=False) != strings[k]]
            check(not bad, "tokenizers decodes hybridrt's ids back to the string: %d differ" % len(bad))
        print("random strings (%s): %d strings, %d differ" % (configs[i]["name"], len(strings), len(diff)))
    print("hf.tokenizers: %d checks passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
