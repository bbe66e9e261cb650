"""`nse edit` and `nse bench`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nse_engine.cli.arguments import batch_setting, non_negative_int, positive_int, setting
from nse_engine.cli.models import add_model_options
from nse_engine.cli.progress_bar import progress_bar_control
from nse_engine.method_names import METHODS
from nse_engine.store.log_rows import LogRow, held_count, written_texts

if TYPE_CHECKING:
    from nse_engine.bench_progress import BenchProgress

SHOWN_PROBLEMS = 10


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("edit", help="apply the facts of a file to a model round by round and save the project")
    p.add_argument("--model", required=True, help="model folder, .gguf file, or 'default'")
    p.add_argument("--cases", required=True, type=Path,
                   help="facts: CSV, our JSONL, CounterFact or ZsRE JSON; only this file's facts are edited")
    p.add_argument("--project", required=True, type=Path, help="project folder (created if missing)")
    p.add_argument("--batch-size", type=positive_int, default=10, help="facts per edit round (default 10)")
    p.add_argument("--limit", type=positive_int, default=None, help="edit at most this many queued facts")
    p.add_argument("--reapply", action="store_true", help="edit facts of the file that were applied before again")
    p.add_argument("--no-fluency", action="store_true", help="skip measuring fluency after each batch (faster)")
    p.add_argument("--method", choices=METHODS, default=None,
                   help="editing method of a new project (default nse); an existing project keeps its own")
    p.add_argument("--set", action="append", default=[], type=batch_setting, metavar="NAME=VALUE",
                   help="override an NSE setting")
    add_model_options(p)
    p.set_defaults(run=run_edit)

    p = sub.add_parser("bench", help="run the sequential editing benchmark on a fresh copy of a model")
    p.add_argument("--model", required=True, help="model folder, .gguf file, or 'default'")
    p.add_argument("--cases", required=True, type=Path, help="our JSONL (facts_dev.jsonl) or CounterFact JSON")
    p.add_argument("--limit", type=positive_int, default=100, help="number of cases (default 100)")
    p.add_argument("--batch-size", type=positive_int, default=10, help="facts per edit round (default 10)")
    p.add_argument("--json", required=True, type=Path,
                   help="where to write the results; progress is saved beside it after every round (bench.json: bench.progress/), "
                        "so rerunning the same command after a stop resumes")
    p.add_argument("--fresh", action="store_true", help="start over, discarding progress saved by an earlier run")
    p.add_argument("--method", choices=METHODS, default="nse", help="editing method (default nse)")
    p.add_argument("--per-fact-baseline", type=non_negative_int, default=0, metavar="K",
                   help="also time a plain per-fact target-state loop on K cases")
    p.add_argument("--set", action="append", default=[], type=setting, metavar="NAME=VALUE",
                   help="override an NSE setting")
    add_checkpoint_options(p)
    add_model_options(p)
    p.set_defaults(run=run_bench)

    p = sub.add_parser("bench-chart", help="draw the checkpoint curves of an `nse bench` result as a PNG")
    p.add_argument("results", nargs="+", type=Path, help="result JSON(s) of `nse bench --checkpoint-every N`")
    p.add_argument("--png", required=True, type=Path, help="the chart to write")
    p.set_defaults(run=run_bench_chart)


def add_checkpoint_options(p: argparse.ArgumentParser) -> None:
    """A lifelong run's checkpoints: fixed samples re-scored every N cases (see nse_engine/bench_checkpoints.py)."""
    g = p.add_argument_group("checkpoints (curves of a long run; the result JSON is written after each)")
    g.add_argument("--checkpoint-every", type=positive_int, default=None, metavar="N",
                   help="score fixed samples every N cases: retention, newest edits, specificity, chat, fluency")
    g.add_argument("--first-sample", type=positive_int, default=None, metavar="N",
                   help="the first N facts applied, re-scored at each checkpoint (default: the checkpoint size)")
    g.add_argument("--last-sample", type=positive_int, default=None, metavar="N",
                   help="the last N facts applied, scored at each checkpoint (default: the checkpoint size)")
    g.add_argument("--neighbour-sample", type=non_negative_int, default=200, metavar="N",
                   help="facts of the whole stream whose neighbour prompts measure specificity (default 200)")
    g.add_argument("--chat-sample", type=non_negative_int, default=200, metavar="N",
                   help="facts applied by the first checkpoint asked in chat and about their subject (default 200)")
    g.add_argument("--sample-seed", type=non_negative_int, default=0, metavar="SEED",
                   help="draws the neighbour and chat samples (default 0)")


def print_import_outcome(report: Any, cases: Path) -> None:
    """What importing the cases of a run did, so that running it again reads as resuming."""
    applied = [s for s in report.skipped if s.status == "applied"]
    queued = len(report.skipped) - len(applied)
    if applied:
        batches = ", ".join(str(b) for b in sorted({s.batch_id for s in applied}))
        print(f"{_facts(len(applied))} of {cases} are already applied (batch {batches}); skipped them "
              "(--reapply edits them again)")
    if queued:
        print(f"{_facts(queued)} of {cases} are already queued")
    if report.rejected:
        rows = len(report.rejected)
        print(f"{rows} row{'s' if rows > 1 else ''} of {cases} {'were' if rows > 1 else 'was'} rejected:")
        for row in report.rejected[:SHOWN_PROBLEMS]:
            for problem in row.problems:
                print(f"  {problem}")
        if rows > SHOWN_PROBLEMS:
            print(f"  … see `nse import {cases} --project PROJECT --dry-run --errors OUT.csv` for all")


def print_held(rows: list[LogRow]) -> None:
    """After a round that checked what the model writes: each applied fact it did not say, with
    what it wrote instead (a chat model: its completion and its chat reply), and the counts."""
    count = held_count(rows)
    if not count.checked:
        return
    for row in rows:
        if row.not_held and row.chat_reply is None:
            print(f"  fact {row.id} not held: {row.request.text!r} went on {row.continuation!r}, "
                  f"not {row.request.target_new!r}")
        elif row.not_held:  # a chat model: both texts
            print(f"  fact {row.id} {row.verdict}: {row.request.text!r} — {written_texts(row)}; "
                  f"not {row.request.target_new!r}")
    print(f"  {count}")


def facts_of_file(report: Any, queued_ids: list[int]) -> list[int]:
    """The queued facts a run of `nse edit --cases FILE` edits: those of FILE (imported now, or queued
    by an earlier run of it), in queue order; facts queued from other files are left as they are."""
    mine = set(report.imported_ids) | {s.fact_id for s in report.skipped if s.status == "queued"}
    return [fact_id for fact_id in queued_ids if fact_id in mine]


def _facts(n: int) -> str:
    return f"{n} fact{'s' if n > 1 else ''}"


def run_edit(args: argparse.Namespace) -> int:
    from nse_engine.editing.settings import apply_settings
    from nse_engine.model.loading import load_model
    from nse_engine.store import ImportOptions, TokenLimit
    from nse_engine.store.fact_import import check_fact_file
    from nse_engine.workspace import Workspace

    check_fact_file(args.cases)  # before a model is loaded and a project created for it
    control = progress_bar_control()
    loaded = load_model(args.model, args.device, args.dtype, args.trust_remote_code, control, args.device_map)
    workspace = Workspace.open(loaded, args.project, control, method=args.method)
    workspace.measure_fluency = not args.no_fluency
    with workspace.closing():
        workspace.project.require_writable("edit")
        n_layers = workspace.session.points.n_layers
        hparams = apply_settings(workspace.hparams, dict(args.set), n_layers) if args.set else None
        limit = TokenLimit.for_model(loaded.tokenizer, loaded.model.config)
        options = ImportOptions(token_limit=limit, reapply=args.reapply)
        report = workspace.project.queue.import_facts(args.cases, options, control)
        print_import_outcome(report, args.cases)
        all_queued = [r.fact_id for r in workspace.project.queue.queued_facts()]
        queued = facts_of_file(report, all_queued)
        others = len(all_queued) - len(queued)
        if others:
            print(f"{_facts(others)} queued from other files {'stay' if others > 1 else 'stays'} queued; "
                  "this run edits only the facts of " + str(args.cases))
        queued = queued[: args.limit]
        if not queued:
            print(f"nothing to edit: no fact of {args.cases} is queued")
        for changes in workspace.run_queue(queued, args.batch_size, hparams, control):
            retention = "" if changes.retention is None else f", earlier edits retained {changes.retention:.0%}"
            pulled_back = f", {changes.refreshed} earlier edits pulled back" if changes.refreshed else ""
            own = changes.own_rows  # one per fact of the batch
            print(f"batch {changes.batch_id}: applied {len(changes.applied_fact_ids)}/{len(own)}{retention}{pulled_back}")
            for fact_id, reason in changes.failed.items():
                print(f"  fact {fact_id} not applied: {reason}")
            print_held(own)
        print(f"project saved in {args.project}")
    return 0


def open_progress(folder: Path, fresh: bool) -> BenchProgress:
    """The benchmark's progress folder (emptied with --fresh), announced so a user knows a stop is not fatal."""
    from nse_engine.bench_progress import BenchProgress

    progress = BenchProgress(folder)
    if fresh:
        progress.remove()
    print(f"progress is saved in {progress.folder} after every round; rerun this command to resume after a stop")
    return progress


def run_bench(args: argparse.Namespace) -> int:
    from nse_engine.bench import BenchConfig, read_cases, run_benchmark
    from nse_engine.bench_checkpoints import CheckpointConfig
    from nse_engine.model.loading import load_model
    from nse_engine.provenance import write_result

    control = progress_bar_control()
    loaded = load_model(args.model, args.device, args.dtype, args.trust_remote_code, control, args.device_map)
    cases = read_cases(args.cases, args.limit)
    checkpoints = CheckpointConfig(args.checkpoint_every, args.first_sample, args.last_sample, args.neighbour_sample,
                                   args.chat_sample, args.sample_seed) if args.checkpoint_every else None
    config = BenchConfig(limit=args.limit, batch_size=args.batch_size, per_fact_baseline=args.per_fact_baseline,
                         checkpoints=checkpoints)
    progress = open_progress(args.json.with_suffix(".progress"), args.fresh)
    report = run_benchmark(loaded, cases, config, dict(args.set), control, method=args.method,
                           progress=progress, on_checkpoint=lambda so_far: write_result(args.json, so_far))
    write_result(args.json, report.to_dict())
    progress.remove()
    if report.resumed_after_rounds:
        print(f"resumed after round(s) {', '.join(map(str, report.resumed_after_rounds))} from saved progress")
    for key in ("efficacy", "generalization", "specificity", "specificity_unedited_neighbours", "generation",
                "generation_paraphrase", "chat_answer", "neighbour_generation", "subject_spelling",
                "first_round_retention", "fluency_before", "fluency_after", "seconds_per_edit", "peak_rss_mb"):
        value = getattr(report, key)
        print(f"{key:<33}{value:.3f}" if isinstance(value, float) else f"{key:<33}{value}")
    print(f"results written to {args.json}")
    if report.checkpoints is not None:
        print(f"{len(report.checkpoints['points'])} checkpoints; draw their curves with "
              f"`nse bench-chart {args.json} --png CHART.png`")
    return 0


def run_bench_chart(args: argparse.Namespace) -> int:
    from nse_engine.bench_curves import read_run_curves
    from nse_engine.curves_chart import write_curves_chart
    from nse_engine.errors import OutputFileError

    runs = [read_run_curves(path) for path in args.results]
    try:
        write_curves_chart(runs, args.png)
    except OSError as exc:
        raise OutputFileError(f"cannot write {args.png}: {exc.strerror or exc}; choose another --png") from None
    print(f"chart written to {args.png}")
    return 0
