#!/usr/bin/env python3
"""Encoding throughput of hybridrt's byte-level BPE next to Hugging Face `tokenizers`, on the same
machine, text and tokenizer.json (a 16K BPE trained by tokenizers on the corpus).

  hybridrt tokenize, 1 thread and all threads: MB/s of encoding (file read and token file written
  included, tokenizer loading not), as its summary line reports;
  tokenizers: Tokenizer.encode on the whole text (one call, one thread), encode_batch on lines and on
  paragraphs (its Rayon threads; and with TOKENIZERS_PARALLELISM=false, one thread).

The corpus is repeated `--copies` times (both sides cache frequent words, so repetition helps both).
usage: bench_tokenizers.py path/to/hybridrt [--corpus FILE] [--copies 10]
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

BENCH_HF = r'''
import sys, time
from tokenizers import Tokenizer
tok = Tokenizer.from_file(sys.argv[1]); text = open(sys.argv[2], encoding="utf-8").read(); mode = sys.argv[3]
items = text.splitlines(keepends=True) if mode == "lines" else re.split("(?<=\n\n)", text) if mode == "paragraphs" else [text]
best = 1e9
for _ in range(2):
    t0 = time.perf_counter()
    if mode == "whole": n = len(tok.encode(text).ids)
    else: n = sum(len(e.ids) for e in tok.encode_batch(items))
    best = min(best, time.perf_counter() - t0)
print(n, best)
'''.replace("import sys, time", "import re, sys, time")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("hybridrt")
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--corpus", default=os.path.join(here, "..", "data", "tinyshakespeare.txt"))
    ap.add_argument("--copies", type=int, default=10)
    a = ap.parse_args()
    import tokenizers
    from tokenizers.implementations import ByteLevelBPETokenizer
    work = tempfile.mkdtemp(prefix="tok-bench-")
    tok_json = work + "/tok.json"
    t = ByteLevelBPETokenizer()
    t.train([a.corpus], vocab_size=16000, min_frequency=2, special_tokens=["<pad>", "<unk>", "<bos>", "<eos>"],
            show_progress=False)
    t.save(tok_json)
    one = open(a.corpus, "rb").read()
    big = work + "/corpus.txt"
    with open(big, "wb") as f:
        f.write(one * a.copies)
    mb_big, mb_one = len(one) * a.copies / 1e6, len(one) / 1e6
    print("corpus: %s x %d = %.1f MB; tokenizer: 16K byte-level BPE (vocab %d); %d cores; tokenizers %s" %
          (os.path.basename(a.corpus), a.copies, mb_big, t.get_vocab_size(), os.cpu_count(), tokenizers.__version__))
    rows = []
    for threads in (1, os.cpu_count()):
        best = 0
        for _ in range(3):
            r = subprocess.run([a.hybridrt, "tokenize", "-q", "--threads", str(threads), "--tokenizer", tok_json, big,
                                "-o", work + "/out.bin"], capture_output=True, text=True, check=True)
            best = max(best, float(re.search(r"([0-9.]+) MB/s", r.stderr).group(1)))
        rows.append(("hybridrt tokenize, %d thread%s" % (threads, "" if threads == 1 else "s"), best))
    script = work + "/bench_hf.py"
    with open(script, "w") as f:
        f.write(BENCH_HF)
    small = work + "/one.txt"
    with open(small, "wb") as f:
        f.write(one)

    def hf(mode, path, mb, single):
        env = dict(os.environ, TOKENIZERS_PARALLELISM="false" if single else "true")
        out = subprocess.run([sys.executable, script, tok_json, path, mode], capture_output=True, text=True,
                             check=True, env=env).stdout.split()
        return mb / float(out[1])

    rows.append(("tokenizers encode(whole text), 1 thread (on 1 copy)", hf("whole", small, mb_one, True)))
    for mode in ("lines", "paragraphs"):
        rows.append(("tokenizers encode_batch(%s), 1 thread" % mode, hf(mode, big, mb_big, True)))
        rows.append(("tokenizers encode_batch(%s), %d threads" % (mode, os.cpu_count()), hf(mode, big, mb_big, False)))
    width = max(len(r[0]) for r in rows)
    print("%-*s  %8s" % (width, "encoder", "MB/s"))
    for name, mbs in rows:
        print("%-*s  %8.1f" % (width, name, mbs))


if __name__ == "__main__":
    main()
