"""CSV files for spreadsheets: the log's facts and batches, and the rows an import rejected.

Cells that a spreadsheet would run as a formula (starting with = + - @, tab or carriage
return) are prefixed with an apostrophe, so opening an export can never execute anything.
Files are UTF-8 with a BOM, which Excel needs to read UTF-8 and our importer accepts.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Iterable, Sequence

from nse_engine.atomic import atomic_path
from nse_engine.store.importing import RejectedRow
from nse_engine.store.project import Project
from nse_engine.store.validation import FIELDS, fields_of

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

FACT_COLUMNS = ("id", "status", *FIELDS, "batch_id", "reason", "source_file", "source_line", "created_at")
BATCH_COLUMNS = (
    "id", "method", "outcome", "facts", "applied", "started_at", "finished_at", "duration_s",
    "state_file", "state_sha256", "undone_at", "hparams",
)
REJECTED_COLUMNS = ("line", "problems", *FIELDS)


def neutralise_formula(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> int:
    """Write rows atomically; returns how many were written."""
    count = 0
    with atomic_path(Path(path)) as tmp:
        with open(tmp, "w", encoding="utf-8-sig", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(header)
            for row in rows:
                writer.writerow([neutralise_formula(v) for v in row])
                count += 1
    return count


def export_facts(project: Project, path: Path, status: str | None = None, search: str | None = None) -> int:
    def rows() -> Iterable[list[object]]:
        for fact in project.facts(status=status, search=search):
            cells = fields_of(fact.request)
            yield [fact.id, fact.status, *(cells[f] for f in FIELDS), fact.batch_id, fact.reason,
                   fact.source_file, fact.source_line, fact.created_at]

    return write_csv(path, FACT_COLUMNS, rows())


def export_batches(project: Project, path: Path) -> int:
    rows = (
        [b.id, b.method, b.outcome, len(b.fact_ids), b.applied_count, b.started_at, b.finished_at,
         round(b.duration_s, 3), b.state_file, b.state_sha256, b.undone_at, json.dumps(b.hparams, sort_keys=True)]
        for b in project.batches()
    )
    return write_csv(path, BATCH_COLUMNS, rows)


def export_rejected(rows: Sequence[RejectedRow], path: Path) -> int:
    """The rejected rows with their problems, in the import layout so they can be fixed and re-imported."""
    return write_csv(
        path,
        REJECTED_COLUMNS,
        ([r.line, "; ".join(f"{p.field}: {p.message}" for p in r.problems), *(r.fields.get(f, "") for f in FIELDS)]
         for r in rows),
    )
