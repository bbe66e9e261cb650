"""Seconds of one editing round by phase, and how many facts hold, for settings side by side.

One fresh session per setting on the default model, the first N dev facts in one round, statistics
prepared before the clock starts. For timings that other jobs do not disturb, run it alone.

    python -m research.round_timing --cases PATH/facts_dev.jsonl --facts 30 --json research/results/round_timing_chat_rows.json
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from nse_engine.progress import JobControl
from nse_engine.provenance import write_result
from nse_engine.editing.session import EditingSession
from research.dev_edits import EditRun, add_cases_argument, parse_arguments

SETTINGS = {
    "chat rows off": {"chat_rows": False, "chat_subject_weight": 0.0},
    "chat rows, subject spelled at weight 1": {"chat_rows": True, "chat_subject_weight": 1.0},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    add_cases_argument(parser)
    parser.add_argument("--facts", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=30)
    parser.add_argument("--json", type=Path, required=True)
    args = parse_arguments(parser)
    run = EditRun.from_arguments(args)
    rows = {}
    for name, overrides in SETTINGS.items():
        session = EditingSession(run.loaded, run.hparams.with_overrides(**overrides), run.points)
        session.prepare(JobControl())
        start = time.perf_counter()
        result = session.apply_round(run.cases)
        rows[name] = {
            "seconds_by_phase": session.rounds[-1].seconds_by_phase,
            "seconds": time.perf_counter() - start,
            "held": sum(o.held for o in result.outcomes),
            "completion_held": sum(bool(o.completion_held) for o in result.outcomes),
            "chat_held": sum(bool(o.chat_held) for o in result.outcomes),
            "facts": len(run.cases),
        }
        print(name, rows[name], flush=True)
    write_result(args.json, {"settings": SETTINGS, "rounds": rows})


if __name__ == "__main__":
    main()
