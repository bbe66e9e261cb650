"""`nse import` and `nse log`: queue facts from a file, and list or export a project's log."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from nse_engine.cli.progress_bar import progress_bar_control

SHOWN_REJECTIONS = 50


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import", help="queue the facts of a CSV, JSON or JSONL file in a project")
    p.add_argument("file", type=Path, help="CSV (subject, prompt, target_new, ...), or our/CounterFact/ZsRE JSON(L)")
    p.add_argument("--project", type=Path, required=True, help="project folder (created if missing)")
    p.add_argument("--dry-run", action="store_true", help="check the file and report, changing nothing")
    p.add_argument("--errors", type=Path, metavar="OUT.csv", help="write the rejected rows and their problems here")
    p.set_defaults(run=run_import)

    p = sub.add_parser("log", help="list a project's facts and batches")
    p.add_argument("--project", type=Path, required=True, help="project folder")
    p.add_argument("--status", choices=("queued", "applied", "failed", "undone"), help="only facts with this status")
    p.add_argument("--csv", type=Path, metavar="OUT", help="export the facts to OUT and the batches to OUT-batches.csv")
    p.set_defaults(run=run_log)


def run_import(args: argparse.Namespace) -> int:
    from nse_engine.store.csv_export import export_rejected
    from nse_engine.store.project import LOG_FILE, Project

    exists = (args.project / LOG_FILE).exists()
    with tempfile.TemporaryDirectory() as scratch:
        if exists:
            project = Project.open(args.project)
        elif args.dry_run:
            project = Project.create(Path(scratch) / "project")
        else:
            project = Project.create(args.project)
            print(f"created project {args.project}")
        with project:
            report = project.import_facts(args.file, dry_run=args.dry_run, control=progress_bar_control())

    verb = "would import" if args.dry_run else "imported"
    print(f"{'format':<14}{report.format}")
    print(f"{'read':<14}{report.rows_read:,} rows")
    print(f"{verb:<14}{report.imported:,}")
    print(f"{'rejected':<14}{len(report.rejected):,}")
    for code, count in report.reasons().most_common():
        print(f"  {count:>8,}  {code.replace('_', ' ')}")
    for warning in report.warnings:
        print(f"note: {warning}")
    if report.trimmed_rows:
        print(f"note: removed spaces around values in {report.trimmed_rows:,} rows")
    for row in report.rejected[:SHOWN_REJECTIONS]:
        for problem in row.problems:
            print(f"  {problem}")
    if len(report.rejected) > SHOWN_REJECTIONS:
        print(f"  … and {len(report.rejected) - SHOWN_REJECTIONS:,} more rejected rows" + ("" if args.errors else " (use --errors OUT.csv)"))
    if args.errors and report.rejected:
        export_rejected(report.rejected, args.errors)
        print(f"rejected rows written to {args.errors}")
    if args.dry_run:
        print("dry run: nothing was changed")
    return 1 if report.rejected else 0


def run_log(args: argparse.Namespace) -> int:
    from nse_engine.store.csv_export import export_batches, export_facts
    from nse_engine.store.project import Project

    with Project.open(args.project) as project:
        if args.csv:
            facts = export_facts(project, args.csv, status=args.status)
            batches_path = args.csv.with_name(f"{args.csv.stem}-batches.csv")
            batches = export_batches(project, batches_path)
            print(f"wrote {facts:,} facts to {args.csv} and {batches:,} batches to {batches_path}")
            return 0
        facts = project.facts(status=args.status)
        print(f"facts ({len(facts):,}{', ' + args.status if args.status else ''})")
        for fact in facts:
            r = fact.request
            target = f"{r.target_true} -> {r.target_new}" if r.target_true else r.target_new
            print(f"  {fact.id:>6}  {fact.status:<8} {r.text} | {target}" + (f"  ({fact.reason})" if fact.reason else ""))
        batches = project.batches()
        print(f"batches ({len(batches):,})")
        for b in batches:
            undone = f", undone {b.undone_at}" if b.undone else ""
            print(f"  {b.id:>6}  {b.method} {b.outcome}: {b.applied_count}/{len(b.fact_ids)} applied, "
                  f"{b.duration_s:.1f} s, {b.finished_at}{undone}")
        current = project.current_state()
        print(f"current state: {current.path.name if current else 'the base model'}")
    return 0
