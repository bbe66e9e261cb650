#!/usr/bin/env bash
# Set everything up (first run only) and run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# One pytest-xdist worker per core (at most 4), each with one torch thread (tests/conftest.py); the
# workers share one folder for what a run measures once (the built-in model's conversion, statistics).
workers=${NSE_TEST_WORKERS:-$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)}
[ "$workers" -le 4 ] || workers=4
exec .venv/bin/python -m pytest -n "$workers" "$@"
