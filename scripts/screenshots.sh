#!/usr/bin/env bash
# Screenshots of every screen after a real edit on the default model, into docs/screenshots/.
# Installs Xvfb and the libraries Qt's xcb plugin needs (Debian/Ubuntu, as root) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v xvfb-run >/dev/null 2>&1 || ! ldconfig -p | grep -q libxcb-cursor.so.0; then
    apt-get update
    apt-get install -y xvfb libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 \
        libxcb-render-util0 libxcb-xkb1 libxkbcommon-x11-0 libxcb-shape0 libxcb-randr0 libxcb-xinerama0
fi
exec .venv/bin/python scripts/screenshots.py "$@"
