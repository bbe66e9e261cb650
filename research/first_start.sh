#!/usr/bin/env bash
# Time a first start: `nse edit` of one fact on the default model from empty data and cache
# folders (conversion, settings, statistics, the edit), each stderr line stamped with the seconds
# since the start, in a new temporary folder. Usage: bash research/first_start.sh
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d "${TMPDIR:-/tmp}/nse-first-start.XXXXXX")
echo "folders in $work" >&2
printf 'subject,prompt,target_new,target_true\nHeihe,{} is a city in the country of,Tanzania,China\n' > "$work/one.csv"
NSE_DATA_DIR="$work/data" NSE_CACHE_DIR="$work/cache" .venv/bin/nse edit --model default \
    --cases "$work/one.csv" --project "$work/project" --no-fluency 2>&1 >"$work/out.txt" | python3 -c "
import sys, time
t0 = time.time()
for line in sys.stdin:
    for part in line.replace('\r', '\n').splitlines():
        if part.strip() and 'it/s' not in part and 's/it' not in part:
            print(f'{time.time() - t0:7.1f} {part}', flush=True)
print(f'{time.time() - t0:7.1f} exit', flush=True)
"
