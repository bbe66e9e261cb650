"""Importing a fact file into the queue: one transaction that validates, de-duplicates and inserts.

Importing is idempotent: a row identical to a queued fact, or to an applied one, is skipped and
reported ("already applied in batch N"), so running the same import or `nse edit` again, or
after a crash, never edits a fact twice; `reapply` queues applied facts again on purpose.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from sqlite_utils import Database

from nse_engine.fact_files.fact_file import FactFile
from nse_engine.fact_files.source import SourceRecord
from nse_engine.fact_files.validation import FactProblem, TokenLimit, fields_of
from nse_engine.progress import JobControl, silent
from nse_engine.store.database import now
from nse_engine.store.fact_rows import INSERT_FACT, duplicate_problems, fact_row
from nse_engine.store.import_report import ImportReport, SkippedRow
from nse_engine.store.log_queries import LogQueries
from nse_engine.store.records import FileRow

log = logging.getLogger(__name__)

IMPORT_PHASE = "importing facts"
_IMPORT_CHUNK = 2000  # rows per INSERT round trip and per progress report


@dataclass(frozen=True, kw_only=True)
class ImportOptions:
    """How a fact file is imported."""

    dry_run: bool = False  # the same checks, nothing written (works on a read-only log)
    token_limit: TokenLimit | None = None  # None (no model loaded): TokenLimit.without_model()
    reapply: bool = False  # queue again facts that were applied, instead of skipping them


def import_facts(
    db: Database, queries: LogQueries, path: Path, options: ImportOptions, control: JobControl | None = None
) -> ImportReport:
    """Queue the valid facts of a file in one transaction and report every rejected or skipped row.

    Raises `ImportFormatError` (and changes nothing) when the file is not a readable fact file,
    or changed while it was read.
    """
    control = control or silent()
    path = Path(path)
    dry_run = options.dry_run
    with FactFile(path, options.token_limit or TokenLimit.without_model()) as source:
        report = ImportReport(path, source.format, dry_run=dry_run)
        db.begin()
        try:
            _FactImport(db, queries, source, report, control, options.reapply).run()
        except BaseException:
            db.rollback()
            raise
        if dry_run:
            db.rollback()
        else:
            db.commit()
        report.warnings = source.warnings
    report.rejected.sort(key=lambda row: row.line)
    log.info("%s %d facts from %s (%s), rejected %d", "checked (dry run): would import" if dry_run else "imported",
             report.imported, path, report.format, len(report.rejected))
    return report


def check_fact_file(path: Path) -> None:
    """Raise `ImportFormatError` unless `path` is a fact file that can be read (its format and header),
    so that a command can refuse it before it creates a project or loads a model for it."""
    with FactFile(Path(path)):
        pass


class _SeenRow:
    __slots__ = ("line", "target_new", "fact_id", "conflicting", "fields")

    def __init__(self, line: int, target_new: str, fact_id: int, fields: dict[str, str] | None) -> None:
        self.line = line
        self.target_new = target_new
        self.fact_id = fact_id
        self.conflicting = False
        self.fields = fields  # kept only by a dry run, which writes no row to read them back from


class _FactImport:
    """One import run inside an open transaction."""

    def __init__(self, db: Database, queries: LogQueries, source: FactFile, report: ImportReport, control: JobControl,
                 reapply: bool) -> None:
        self.db = db
        self.queries = queries
        self.source = source
        self.source_file = str(source.path.resolve())
        self.report = report
        self.control = control
        self.dry_run = report.dry_run
        self.queued = queries.queued_keys()
        self.applied = {} if reapply else queries.applied_keys()
        self.seen: dict[tuple[str, str], _SeenRow] = {}
        self.pending: list[tuple] = []
        self.next_id, self.next_position = queries.next_fact_slot()
        self.created_at = now()

    def run(self) -> None:
        total = self.source.total_bytes
        self.control.report(IMPORT_PHASE, 0, total)
        line = 0
        for record in self.source.records:
            line = record.line
            self.report.rows_read += 1
            self.report.trimmed_rows += record.trimmed
            self.add(record)
            if self.report.rows_read % _IMPORT_CHUNK == 0:
                self.flush()
                self.control.report(IMPORT_PHASE, self.source.bytes_read, total, f"{self.report.rows_read:,} rows")
        self.source.check_unchanged(line)  # a file cut short while read: none of its rows is kept
        self.flush()
        self.control.report(IMPORT_PHASE, total, total, f"{self.report.rows_read:,} rows")

    def add(self, record: SourceRecord) -> None:
        request = record.request
        if request is None:
            self.reject(record.line, record.problems, record.fields)
            return
        key = (request.subject, request.prompt)
        repeated = self.repeated(key, request.target_new, record.line)
        if repeated is not None:
            self.report.skipped.append(repeated)
            return
        problems = duplicate_problems(key, request.target_new, self.queued)
        earlier = self.seen.get(key)
        if earlier is not None:
            if earlier.conflicting or earlier.target_new != request.target_new:
                problems.append(FactProblem(
                    "target_new", "conflict",
                    f"line {earlier.line} asks for {earlier.target_new!r} for the same subject and prompt; keep one",
                ))
                self.withdraw(earlier, record.line, request.target_new)
            else:
                problems.append(FactProblem("prompt", "duplicate", f"duplicate of line {earlier.line}"))
        if problems:
            self.reject(record.line, [FactProblem(p.field, p.code, p.message, record.line) for p in problems], record.fields)
            return
        fact_id = self.next_id
        self.next_id += 1
        self.seen[key] = _SeenRow(record.line, request.target_new, fact_id, record.fields if self.dry_run else None)
        self.pending.append(fact_row(fact_id, self.next_position, request, self.source_file, record.line, self.created_at))
        self.next_position += 1
        self.report.imported_ids.append(fact_id)

    def repeated(self, key: tuple[str, str], target_new: str, line: int) -> SkippedRow | None:
        """The queued or applied fact this row repeats exactly, if any."""
        queued = self.queued.get(key)
        if queued is not None and queued[1] == target_new:
            return SkippedRow(line, queued[0], "queued", None)
        applied = self.applied.get((*key, target_new))
        if applied is not None:
            return SkippedRow(line, applied[0], "applied", applied[1])
        return None

    def withdraw(self, earlier: _SeenRow, line: int, target: str) -> None:
        """Take back an already accepted row that a later row contradicts."""
        if earlier.conflicting:
            return
        earlier.conflicting = True
        if earlier.fields is not None:
            fields = earlier.fields
            self.pending = [row for row in self.pending if row[0] != earlier.fact_id]
        else:
            self.flush()
            fields = fields_of(self.queries.fact(earlier.fact_id).request)
            self.db.execute("DELETE FROM facts WHERE id = ?", [earlier.fact_id])
        self.report.imported_ids.remove(earlier.fact_id)
        problem = FactProblem("target_new", "conflict", f"line {line} asks for {target!r} for the same subject and prompt; keep one", earlier.line)
        self.reject(earlier.line, [problem], fields)

    def reject(self, line: int, problems: list[FactProblem], fields: dict[str, str]) -> None:
        self.report.rejected.append(FileRow(line, fields, tuple(problems)))

    def flush(self) -> None:
        if self.pending and not self.dry_run:
            self.db.conn.executemany(INSERT_FACT, self.pending)
        self.pending.clear()
