#!/usr/bin/env bash
# Agreement with Hugging Face tokenizers (scripts/check_hf_tokenizers.py): training, tokenizer.json
# both ways, the corpus and random strings. Uses .venv-hf (scripts/setup_hf.sh) or python3 with
# tokenizers installed; without either it skips, saying so, unless HYBRIDRT_REQUIRE_HF=1 (CI).
# usage: test_hf_tokenizers.sh path/to/hybridrt
set -u
src=$(cd "$(dirname "$0")/../.." && pwd)
python=python3
[ -x "$src/.venv-hf/bin/python" ] && python="$src/.venv-hf/bin/python"
if ! "$python" -c "import tokenizers" 2>/dev/null; then
    if [ "${HYBRIDRT_REQUIRE_HF:-0}" = 1 ]; then
        echo "hf.tokenizers: Hugging Face tokenizers is not installed and HYBRIDRT_REQUIRE_HF=1 (run scripts/setup_hf.sh)"
        exit 1
    fi
    echo "hf.tokenizers: SKIPPED: Hugging Face tokenizers is not installed (bash scripts/setup_hf.sh installs it)"
    exit 0
fi
exec "$python" "$src/scripts/check_hf_tokenizers.py" "$1"
