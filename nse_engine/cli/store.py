"""`nse import`, `nse log` and `nse rollback`: queue facts from a file, list or export a project's
log, and go back to the last good state when the current state file is damaged.

`nse import` and `nse rollback` change the project and take its write lock (refused while the app
or another command has it open); `nse log` and `nse import --dry-run` only read, at any time.
"""

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
    p.add_argument("--reapply", action="store_true", help="queue facts that were applied before again")
    p.set_defaults(run=run_import)

    p = sub.add_parser("log", help="list a project's facts and batches")
    p.add_argument("--project", type=Path, required=True, help="project folder")
    p.add_argument("--status", choices=("queued", "applied", "failed", "undone"), help="only facts with this status")
    p.add_argument("--csv", type=Path, metavar="OUT", help="export the facts to OUT and the batches to OUT-batches.csv")
    p.set_defaults(run=run_log)

    p = sub.add_parser("rollback", help="go back to the last good state when the current state file is damaged")
    p.add_argument("--project", type=Path, required=True, help="project folder")
    p.add_argument("--discard-current", action="store_true",
                   help="set the current state aside although its checksum matches (it restores NaN weights)")
    p.set_defaults(run=run_rollback)


def run_import(args: argparse.Namespace) -> int:
    from nse_engine.errors import OutputFileError
    from nse_engine.store.csv_export import export_rejected
    from nse_engine.store.output_paths import check_output_path
    from nse_engine.store.fact_import import ImportOptions, check_fact_file
    from nse_engine.store.project import LOG_FILE, Project

    check_fact_file(args.file)  # before a project is created for it
    if args.errors:
        _refuse_standard_output("--errors", args.errors)
        try:
            check_output_path(args.errors, [args.file], [args.project])  # before anything is imported
        except OutputFileError as exc:
            raise OutputFileError(f"--errors: {exc}") from None
    with tempfile.TemporaryDirectory() as scratch:
        if args.dry_run:
            exists = (args.project / LOG_FILE).exists()
            project = Project.open(args.project, read_only=True) if exists else Project.create(Path(scratch) / "p")
        else:
            project, created = Project.open_or_create(args.project)
            if created:
                print(f"created project {args.project}")
        with project:
            options = ImportOptions(dry_run=args.dry_run, reapply=args.reapply)
            report = project.queue.import_facts(args.file, options, progress_bar_control())

    verb = "would import" if args.dry_run else "imported"
    print(f"{'format':<14}{report.format}")
    print(f"{'read':<14}{report.rows_read:,} rows")
    print(f"{verb:<14}{report.imported:,}")
    print(f"{'rejected':<14}{len(report.rejected):,}")
    if report.skipped:
        print(f"{'skipped':<14}{len(report.skipped):,} (already queued or applied)")
    for code, count in report.reasons().most_common():
        print(f"  {count:>8,}  {code.replace('_', ' ')}")
    for warning in report.warnings:
        print(f"note: {warning}")
    if report.trimmed_rows:
        print(f"note: removed spaces around values in {report.trimmed_rows:,} rows")
    for row in report.rejected[:SHOWN_REJECTIONS]:
        for problem in row.problems:
            print(f"  {problem}")
    for skipped in report.skipped[:SHOWN_REJECTIONS]:
        print(f"  {skipped}")
    if any(s.status == "applied" for s in report.skipped):
        print("note: facts already applied were skipped; --reapply queues them again")
    if len(report.rejected) > SHOWN_REJECTIONS:
        print(f"  … and {len(report.rejected) - SHOWN_REJECTIONS:,} more rejected rows" + ("" if args.errors else " (use --errors OUT.csv)"))
    if args.errors and report.rejected:
        try:
            export_rejected(report.rejected, args.errors, [args.file], [args.project])
        except OutputFileError as exc:
            done = "nothing was imported" if args.dry_run else f"the {report.imported:,} valid facts were imported"
            raise OutputFileError(f"--errors: {exc} ({done})") from None
        print(f"rejected rows written to {args.errors}")
    if args.dry_run:
        print("dry run: nothing was changed")
    return 1 if report.rejected else 0


def _refuse_standard_output(option: str, path: Path) -> None:
    """`-` is standard output to most tools, but here it would become files named `-` (and `--batches.csv`)."""
    from nse_engine.errors import OutputFileError

    if str(path) == "-":
        raise OutputFileError(f"{option} needs a file name: '-' (standard output) is not supported; "
                              "name a file such as facts.csv")


def run_log(args: argparse.Namespace) -> int:
    from nse_engine.store.csv_export import export_batches, export_facts
    from nse_engine.store.output_paths import check_output_path
    from nse_engine.store.project import Project

    if args.csv:
        _refuse_standard_output("--csv", args.csv)
    with Project.open(args.project, read_only=True) as project:
        if args.csv:
            batches_path = args.csv.with_name(f"{args.csv.stem}-batches.csv")
            for path in (args.csv, batches_path):  # both, before either is written
                check_output_path(path, projects=[args.project])
            facts = export_facts(project, args.csv, status=args.status)
            batches = export_batches(project, batches_path)
            print(f"wrote {facts:,} facts to {args.csv} and {batches:,} batches to {batches_path}")
            return 0
        facts = project.queries.facts(status=args.status)
        print(f"facts ({len(facts):,}{', ' + args.status if args.status else ''})")
        for fact in facts:
            r = fact.request
            target = f"{r.target_true} -> {r.target_new}" if r.target_true else r.target_new
            print(f"  {fact.id:>6}  {fact.status:<8} {r.text} | {target}" + (f"  ({fact.reason})" if fact.reason else ""))
        batches = project.queries.batches()
        print(f"batches ({len(batches):,})")
        for b in batches:
            undone = f", undone {b.undone_at}" if b.undone else ""
            print(f"  {b.id:>6}  {b.method} {b.outcome}: {b.applied_count}/{len(b.fact_ids)} applied, "
                  f"{b.duration_s:.1f} s, {b.finished_at}{undone}")
        current = project.queries.current_state()
        print(f"current state: {current.path.name if current else 'the base model'}")
        recovery = project.history.recovery()
        if recovery is not None:
            print(f"warning: {recovery.describe(args.project)}")
    return 0


def run_rollback(args: argparse.Namespace) -> int:
    from nse_engine.store.project import Project

    with Project.open(args.project) as project:
        recovery = project.history.roll_back(args.discard_current)
    if recovery is None:
        print(f"the current state of {args.project} is intact; nothing to roll back")
        return 0
    good = f"{recovery.good.path.name} (saved by batch {recovery.good.batch_id})" if recovery.good else "the base model"
    print(f"rolled back to {good}; {recovery.damaged.path.name} {recovery.problem} and was set aside")
    if recovery.undo_batch_ids:
        batches = ", ".join(str(b) for b in recovery.undo_batch_ids)
        print(f"batch {batches} recorded as undone; import their facts again to redo them "
              f"(`nse log --project {args.project} --status undone` lists them)")
    return 0
