"""`nse compare`: several editing methods on the same facts and model, side by side."""

from __future__ import annotations

import argparse
from pathlib import Path

from nse_engine.cli.arguments import setting
from nse_engine.cli.models import add_model_options
from nse_engine.cli.progress_bar import progress_bar_control


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="run the sequential benchmark with several methods on the same facts")
    p.add_argument("--model", required=True, help="model folder, .gguf file, or 'default'")
    p.add_argument("--cases", required=True, type=Path, help="our JSONL (facts_dev.jsonl), CSV or CounterFact JSON")
    p.add_argument("--limit", type=int, default=100, help="number of cases (default 100)")
    p.add_argument("--batch-size", type=int, default=10, help="facts per edit round (default 10)")
    p.add_argument("--methods", default="nse,memit,alphaedit",
                   help="comma-separated: nse, memit, alphaedit, each optionally +nas and/or +encore "
                        "(default nse,memit,alphaedit)")
    p.add_argument("--out", required=True, type=Path,
                   help="folder for compare.json, compare.md and the charts; methods an earlier run there "
                        "measured with the same model, facts, rounds and settings are kept")
    p.add_argument("--fresh", action="store_true",
                   help="rerun every method, ignoring an earlier compare.json and saved progress in --out")
    p.add_argument("--set", action="append", default=[], type=setting, metavar="NAME=VALUE",
                   help="override a setting for every method")
    add_model_options(p)
    p.set_defaults(run=run_compare)


def run_compare(args: argparse.Namespace) -> int:
    from nse_engine.bench import BenchConfig, read_cases
    from nse_engine.cli.editing import open_progress
    from nse_engine.compare import parse_methods, run_comparison
    from nse_engine.compare_report import read_comparison, write_comparison
    from nse_engine.model.loading import load_model

    runs = parse_methods(args.methods)
    overrides = dict(args.set)
    control = progress_bar_control()
    loaded = load_model(args.model, args.device, args.dtype, args.trust_remote_code, control, args.device_map)
    cases = read_cases(args.cases, args.limit)
    config = BenchConfig(limit=args.limit, batch_size=args.batch_size)
    earlier = None if args.fresh else read_comparison(args.out)
    progress = open_progress(args.out / ".progress", args.fresh)
    comparison = run_comparison(loaded, cases, config, runs, overrides, control, earlier,
                                save=lambda partial: write_comparison(args.out, partial), progress=progress)
    written = write_comparison(args.out, comparison)
    print((args.out / "compare.md").read_text(encoding="utf-8"))
    for label in comparison["kept"]:
        made = comparison["results"][label].get("provenance", {})
        print(f"{label}: kept from the earlier run in {args.out} (commit {made.get('commit')}, {made.get('date')}); "
              "--fresh reruns it")
    print("written: " + ", ".join(str(p) for p in written))
    return 0
