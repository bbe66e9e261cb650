#!/usr/bin/env bash
# Build the packaged app (PyInstaller onedir, from app.spec, into dist/nse-studio/) and
# smoke-test it: the bundled nse-studio starts in a real window under Xvfb, converts and loads
# the built-in model in a fresh data folder, and applies one edit (nse-app --smoke-test).
# The statistics and derived settings come from the user's cache when they are there (a first
# project computes them: half an hour on a busy 2-core machine); --cold starts from an empty one.
# Installs PyInstaller, Xvfb and the libraries Qt's xcb plugin needs (Debian/Ubuntu, as root)
# when missing. Exits non-zero when the build or the smoke test fails.
#
#   bash scripts/build-bundle.sh [--no-build] [--cold]    # --no-build: smoke-test the existing bundle
set -euo pipefail
cd "$(dirname "$0")/.."

build=1
cold=0
for arg in "$@"; do
    case "$arg" in
        --no-build) build=0 ;;
        --cold) cold=1 ;;
        *) echo "usage: bash scripts/build-bundle.sh [--no-build] [--cold]" >&2; exit 2 ;;
    esac
done

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

# A fresh data folder (and home), so the bundle converts the built-in model itself.
home=$(mktemp -d)
trap 'rm -rf "$home"' EXIT
cache=$(.venv/bin/python -c "from nse_engine.paths import cache_dir; print(cache_dir())")
[ "$cold" -eq 0 ] || cache=$home/cache
started=$(date +%s)
env -u QT_QPA_PLATFORM NSE_DATA_DIR="$home/data" NSE_CACHE_DIR="$cache" HOME="$home" \
    xvfb-run -a -s "-screen 0 1440x960x24" timeout 3600 "$bundle/nse-studio" --smoke-test --model default
echo "smoke test passed in $(($(date +%s) - started)) s"
