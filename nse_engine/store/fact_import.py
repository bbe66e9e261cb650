"""Importing a fact file into the queue: one transaction that validates, de-duplicates and inserts."""

from __future__ import annotations

import logging
from pathlib import Path

from sqlite_utils import Database

from nse_engine.progress import JobControl, silent
from nse_engine.store.database import now
from nse_engine.store.fact_rows import INSERT_FACT, duplicate_problems, fact_row
from nse_engine.store.importing import FactFile, ImportReport, RejectedRow, SourceRecord
from nse_engine.store.log_queries import LogQueries
from nse_engine.store.validation import FactProblem, TokenLimit, fields_of

log = logging.getLogger(__name__)

IMPORT_PHASE = "importing facts"
_IMPORT_CHUNK = 2000  # rows per INSERT round trip and per progress report


def import_facts(
    db: Database,
    queries: LogQueries,
    path: Path,
    dry_run: bool = False,
    control: JobControl | None = None,
    token_limit: TokenLimit | None = None,
) -> ImportReport:
    """Queue the valid facts of a file in one transaction and report every rejected row.

    A dry run does the same work and rolls it back. Raises `ImportFormatError` (and changes
    nothing) when the file is not a readable fact file.
    """
    control = control or silent()
    path = Path(path)
    with FactFile(path, token_limit) as source:
        report = ImportReport(path, source.format, dry_run=dry_run)
        db.begin()
        try:
            _FactImport(db, queries, source, report, control).run()
        except BaseException:
            db.rollback()
            raise
        if dry_run:
            db.rollback()
        else:
            db.commit()
        report.warnings = source.warnings
    report.rejected.sort(key=lambda row: row.line)
    log.info("imported %d facts from %s (%s), rejected %d", report.imported, path, report.format, len(report.rejected))
    return report


class _SeenRow:
    __slots__ = ("line", "target_new", "fact_id", "conflicting")

    def __init__(self, line: int, target_new: str, fact_id: int) -> None:
        self.line = line
        self.target_new = target_new
        self.fact_id = fact_id
        self.conflicting = False


class _FactImport:
    """One import run inside an open transaction."""

    def __init__(self, db: Database, queries: LogQueries, source: FactFile, report: ImportReport, control: JobControl) -> None:
        self.db = db
        self.queries = queries
        self.source = source
        self.source_file = str(source.path.resolve())
        self.report = report
        self.control = control
        self.queued = queries.queued_keys()
        self.seen: dict[tuple[str, str], _SeenRow] = {}
        self.pending: list[tuple] = []
        self.next_id, self.next_position = queries.next_fact_slot()
        self.created_at = now()

    def run(self) -> None:
        total = self.source.total_bytes
        self.control.report(IMPORT_PHASE, 0, total)
        for record in self.source.records:
            self.report.rows_read += 1
            self.report.trimmed_rows += record.trimmed
            self.add(record)
            if self.report.rows_read % _IMPORT_CHUNK == 0:
                self.flush()
                self.control.report(IMPORT_PHASE, self.source.bytes_read, total, f"{self.report.rows_read:,} rows")
        self.flush()
        self.control.report(IMPORT_PHASE, total, total, f"{self.report.rows_read:,} rows")

    def add(self, record: SourceRecord) -> None:
        request = record.request
        if request is None:
            self.reject(record.line, record.problems, record.fields)
            return
        key = (request.subject, request.prompt)
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
        self.seen[key] = _SeenRow(record.line, request.target_new, fact_id)
        self.pending.append(fact_row(fact_id, self.next_position, request, self.source_file, record.line, self.created_at))
        self.next_position += 1
        self.report.imported_ids.append(fact_id)

    def withdraw(self, earlier: _SeenRow, line: int, target: str) -> None:
        """Take back an already accepted row that a later row contradicts."""
        if earlier.conflicting:
            return
        earlier.conflicting = True
        self.flush()
        fact = self.queries.fact(earlier.fact_id)
        self.db.execute("DELETE FROM facts WHERE id = ?", [earlier.fact_id])
        self.report.imported_ids.remove(earlier.fact_id)
        problem = FactProblem("target_new", "conflict", f"line {line} asks for {target!r} for the same subject and prompt; keep one", earlier.line)
        self.reject(earlier.line, [problem], fields_of(fact.request))

    def reject(self, line: int, problems: list[FactProblem], fields: dict[str, str]) -> None:
        self.report.rejected.append(RejectedRow(line, problems, fields))

    def flush(self) -> None:
        if self.pending:
            self.db.conn.executemany(INSERT_FACT, self.pending)
            self.pending.clear()
