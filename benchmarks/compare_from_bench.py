"""Start an `nse compare` folder from an `nse bench` result of the same facts and rounds.

A 1000-fact benchmark takes an hour or more per method on a 2-core CPU; a method already measured
by `nse bench` need not run again inside `nse compare`. The bench report becomes the method's
column (its own provenance kept), and `nse compare --out FOLDER` then keeps it where the model,
facts, rounds, dtype and settings match, running only the other methods.

    python -m benchmarks.compare_from_bench BENCH.json --cases FACTS --limit N --label nse --out FOLDER
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from nse_engine.bench import read_cases
from nse_engine.compare import check_same_experiment, experiment
from nse_engine.compare_report import read_comparison, write_comparison
from nse_engine.errors import NseError
from nse_engine.facts import EditRequest


def add_bench_result(out: Path, report: dict, cases: list[EditRequest], label: str = "nse") -> dict:
    """Write `report` (an `nse bench` result of `cases`) into the comparison in `out` as `label`'s column."""
    head = experiment(cases, report["batch_size"], report["model"])
    comparison = read_comparison(out) or {}
    if comparison:
        check_same_experiment(comparison, head)
    results = {**comparison.get("results", {}), label: report}
    methods = [m for m in comparison.get("methods", []) if m != label] + [label]
    comparison = {**head, "methods": methods, "kept": [], "results": results}
    write_comparison(out, comparison)
    return comparison


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bench", type=Path, help="the JSON `nse bench --json` wrote")
    parser.add_argument("--cases", required=True, type=Path, help="the facts file the benchmark read")
    parser.add_argument("--limit", required=True, type=int, help="the benchmark's --limit")
    parser.add_argument("--label", default="nse", help="the method's label in the comparison (default nse)")
    parser.add_argument("--out", required=True, type=Path, help="the comparison folder")
    args = parser.parse_args()
    report = json.loads(args.bench.read_text(encoding="utf-8"))
    try:
        add_bench_result(args.out, report, read_cases(args.cases, args.limit), args.label)
    except NseError as exc:
        raise SystemExit(f"error: {exc}") from exc
    print(f"{args.out}: {args.label} from {args.bench}")


if __name__ == "__main__":
    main()
