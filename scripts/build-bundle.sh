#!/usr/bin/env bash
# Build the packaged app (PyInstaller onedir, from app.spec, into dist/nse-studio/) and
# smoke-test it: the bundled nse-studio starts in a real window under Xvfb, converts and loads
# the built-in model in a fresh data folder, and applies one edit (nse-app --smoke-test).
# Installs PyInstaller, Xvfb and the libraries Qt's xcb plugin needs (Debian/Ubuntu, as root)
# when missing. Exits non-zero when the build or the smoke test fails.
#
#   bash scripts/build-bundle.sh [--no-build]      # --no-build: smoke-test the existing bundle
set -euo pipefail
cd "$(dirname "$0")/.."

build=1
case "${1:-}" in
    "") ;;
    --no-build) build=0 ;;
    *) echo "usage: bash scripts/build-bundle.sh [--no-build]" >&2; exit 2 ;;
esac

bash scripts/setup.sh
if ! command -v xvfb-run >/dev/null 2>&1 || ! ldconfig -p | grep -q libxcb-cursor.so.0; then
    apt-get update
    apt-get install -y xvfb libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 \
        libxcb-render-util0 libxcb-xkb1 libxkbcommon-x11-0 libxcb-shape0 libxcb-randr0 libxcb-xinerama0
fi

bundle=dist/nse-studio
if [ "$build" -eq 1 ]; then
    .venv/bin/python -c "import PyInstaller" 2>/dev/null || .venv/bin/python -m pip install -e ".[package]"
    started=$(date +%s)
    .venv/bin/pyinstaller --noconfirm --clean --log-level WARN app.spec
    echo "built $bundle in $(($(date +%s) - started)) s"
fi
[ -x "$bundle/nse-studio" ] || { echo "error: no bundle at $bundle (run without --no-build)" >&2; exit 1; }
echo "bundle size: $(du -sh "$bundle" | cut -f1) ($(du -sb "$bundle" | cut -f1) bytes), $(find "$bundle" -type f | wc -l) files"

# A fresh data and cache folder, so the bundle converts the built-in model itself.
home=$(mktemp -d)
trap 'rm -rf "$home"' EXIT
started=$(date +%s)
env -u QT_QPA_PLATFORM NSE_DATA_DIR="$home/data" NSE_CACHE_DIR="$home/cache" HOME="$home" \
    xvfb-run -a -s "-screen 0 1440x960x24" timeout 1800 "$bundle/nse-studio" --smoke-test --model default
echo "smoke test passed in $(($(date +%s) - started)) s"
