#!/usr/bin/env bash
# Installs Hugging Face `tokenizers` into .venv-hf (a Python virtual environment in the checkout), for
# the agreement check tests/hf/test_hf_tokenizers.sh (scripts/check_hf_tokenizers.py) and the
# tokenizer benchmark (scripts/bench_tokenizers.py). Pinned: runtime/text/unicode_classes.inc was
# generated from this version (scripts/gen_unicode_classes.py).
set -euo pipefail
cd "$(dirname "$0")/.."
version=0.23.3
if .venv-hf/bin/python -c "import tokenizers, sys; sys.exit(tokenizers.__version__ != '$version')" 2>/dev/null; then
    echo "setup_hf: tokenizers $version present in .venv-hf"
    exit 0
fi
python3 -m venv .venv-hf
.venv-hf/bin/python -m pip install -q --disable-pip-version-check "tokenizers==$version"
echo "setup_hf: installed tokenizers $version into .venv-hf"
