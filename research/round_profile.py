"""Where one editing round spends its time: run it under py-spy, then split the samples by operation.

    py-spy record -r 50 -f raw -o /tmp/round.txt -- python -m research.round_profile run --cases PATH --facts 30
    python -m research.round_profile table /tmp/round.txt --json research/results/round_profile.json

`run` edits the first N dev facts in one round on the default model with its derived settings
(statistics prepared before the round; `--set NAME=VALUE` overrides). `table` attributes each
sample to the innermost operation below that it is inside, and prints the shares as the
Markdown table docs/performance.md shows.
"""

from __future__ import annotations

import argparse
import collections
import time
from pathlib import Path

# (operation, a frame that marks it), innermost first: a sample counts for the first that matches.
OPERATIONS = [
    ("target states: backward", "backward (torch/autograd"),
    ("target states: forward (blocks above the edit layer)", "SuffixReplay.run"),
    ("target states: prompts up to the edit layer", "SuffixReplay.__init__"),
    ("verification: prompt continuations", "FactReader.continuations"),
    ("verification: chat replies", "FactReader.chat_replies"),
    ("passes: keys per layer (edited layers rerun)", "LayerByLayerTrace.keys_and_state"),
    ("passes: prompts up to the first edited layer", "LayerByLayerTrace.__init__"),
    ("passes: least-squares solve", "solve_layer_update"),
    ("passes: earlier facts' distances (refresh)", "find_drifted_facts"),
    ("passes: distances to z", "FactReader.hidden_at_last_layer"),
    ("keys stored for Kp", "FactReader.average_keys"),
    ("target states: other", "compute_target_states"),
    ("passes: other", "run_nse_round"),
]


def attribute(raw: Path) -> dict[str, float]:
    """Share of the round's samples per operation, from py-spy's raw (collapsed) output."""
    counts: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if "apply_round" not in stack:
            continue  # loading, statistics, start-up
        frames = stack.split(";")
        name = next((op for op, mark in OPERATIONS if any(mark in f for f in frames)), "rest of the round")
        counts[name] += int(n)
    total = sum(counts.values())
    return {name: counts[name] / total for name, _ in [*OPERATIONS, ("rest of the round", "")] if counts[name]}


def run(args: argparse.Namespace) -> None:
    from nse_engine.editing.session import EditingSession
    from nse_engine.editing.settings import apply_settings, parse_setting
    from nse_engine.progress import JobControl
    from research.dev_edits import EditRun

    edit_run = EditRun.from_arguments(args)
    overrides = {name: parse_setting(name, value) for name, value in (s.split("=", 1) for s in args.set)}
    hp = apply_settings(edit_run.hparams, overrides, edit_run.points.n_layers)
    session = EditingSession(edit_run.loaded, hp, edit_run.points)
    session.prepare(JobControl())
    start = time.perf_counter()
    result = session.apply_round(edit_run.cases)
    print(f"{time.perf_counter() - start:.1f} s", session.rounds[-1].seconds_by_phase,
          f"held {sum(o.held for o in result.outcomes)}/{len(result.outcomes)}", flush=True)


def table(args: argparse.Namespace) -> None:
    from nse_engine.provenance import write_result

    shares = attribute(args.raw)
    print("| operation | share of the round |\n| --- | --- |")
    for name, share in shares.items():
        print(f"| {name} | {share:.1%} |")
    if args.json:
        write_result(args.json, {"raw": str(args.raw), "shares": shares})


def main() -> None:
    from research.dev_edits import add_cases_argument

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run")
    run_parser.add_argument("--model", default="default")
    add_cases_argument(run_parser)
    run_parser.add_argument("--facts", type=int, default=30)
    run_parser.add_argument("--batch-size", type=int, default=30)
    run_parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    table_parser = commands.add_parser("table")
    table_parser.add_argument("raw", type=Path)
    table_parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.command == "table":
        table(args)
        return
    if args.cases is None or not args.cases.is_file():
        parser.error("name the dev facts (facts_dev.jsonl) with --cases PATH or NSE_DEV_FACTS")
    run(args)


if __name__ == "__main__":
    main()
