#!/usr/bin/env bash
# Set everything up (first run only) and start NSE Studio on the built-in default model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/nse-app --model default "$@"
