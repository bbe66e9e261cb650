"""Time the import of a large fact CSV (100,000 rows by default) into a new project.

    python benchmarks/bench_import.py [--rows N] [--out benchmarks/results/import.json]

The CSV is written first (streamed, with paraphrases and neighbourhood prompts like real
facts); only the import is timed. Writes rows/s, the duration and the peak memory as JSON,
with the commit, command and date that produced them.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import resource
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nse_engine.progress import JobControl, Progress  # noqa: E402
from nse_engine.provenance import write_result  # noqa: E402
from nse_engine.store import Project  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "import.json"
COUNTRIES = ["France", "Germany", "Italy", "Spain", "Poland", "Japan", "Chile", "Kenya", "Peru", "Norway"]


def write_csv(path: Path, rows: int) -> None:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["subject", "prompt", "target_new", "target_true", "paraphrases", "neighborhood", "relation"])
        for i in range(rows):
            subject = f"City {i}"
            writer.writerow([
                subject,
                "{} is a city in the country of" if i % 2 else f"The city of {subject} lies in",
                COUNTRIES[i % 10],
                COUNTRIES[(i + 3) % 10],
                f"{subject} is located in | The city of {subject} is in",
                f"City {i + 1} is a city in the country of => {COUNTRIES[(i + 1) % 10]} | "
                f"City {i + 2} is a city in the country of => {COUNTRIES[(i + 2) % 10]}",
                "city_country",
            ])


def run(rows: int) -> dict:
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch) / "facts.csv"
        write_csv(source, rows)
        updates: list[Progress] = []
        with Project.create(Path(scratch) / "project") as project:
            started, cpu_started = time.perf_counter(), time.process_time()
            report = project.queue.import_facts(source, control=JobControl(updates.append))
            seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
            assert project.queries.count_facts(status="queued") == report.imported
        peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
        return {
            "rows": rows,
            "imported": report.imported,
            "rejected": len(report.rejected),
            "seconds": round(seconds, 3),
            "rows_per_s": round(rows / seconds),
            "cpu_seconds": round(cpu_seconds, 3),  # differs from `seconds` when other work shares the CPU
            "load_average_1min": round(os.getloadavg()[0], 2),
            "file_mib": round(source.stat().st_size / 2**20, 1),
            "progress_reports": len(updates),
            "peak_rss_mib": round(peak_kib / 1024, 1),
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "machine": f"{platform.system()} {platform.machine()}",
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    result = run(args.rows)
    write_result(args.out, result)
    print(f"{result['rows']:,} rows imported in {result['seconds']} s ({result['rows_per_s']:,} rows/s; "
          f"{result['cpu_seconds']} s of CPU), peak memory {result['peak_rss_mib']} MiB -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
