"""CSV files for spreadsheets: the log's facts and batches, and the rows an import rejected.

Cells that a spreadsheet would run as a formula get an apostrophe in front (fact_files/csv_cells.py), so
opening an export can never execute anything; our importer takes it off again. Files are UTF-8
with a BOM, which Excel needs to read UTF-8 and our importer accepts.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Iterable, Sequence

from nse_engine.atomic import atomic_path
from nse_engine.errors import OutputFileError
from nse_engine.fact_files.csv_cells import FACT_EXPORT_COLUMNS, REJECTED_COLUMNS, neutralise_formula
from nse_engine.fact_files.validation import FIELDS, fields_of
from nse_engine.store.output_paths import check_output_path
from nse_engine.store.project import Project
from nse_engine.store.records import FileRow

__all__ = ["REJECTED_COLUMNS", "export_batches", "export_facts", "export_rejected", "write_csv"]

BATCH_COLUMNS = (
    "id", "method", "outcome", "facts", "applied", "started_at", "finished_at", "duration_s",
    "state_file", "state_sha256", "undone_at", "hparams",
)


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]], inputs: Sequence[Path] = (),
              projects: Sequence[Path] = ()) -> int:
    """Write rows atomically; returns how many were written. `OutputFileError` when it cannot be,
    or must not be: over one of `inputs` or a project's own files (output_paths.py)."""
    path = Path(path)
    check_output_path(path, inputs, projects)
    count = 0
    try:
        with atomic_path(path) as tmp:
            with open(tmp, "w", encoding="utf-8-sig", newline="") as fh:
                writer = csv.writer(fh)
                writer.writerow(header)
                for row in rows:
                    writer.writerow([neutralise_formula(v) for v in row])
                    count += 1
    except OSError as exc:
        raise OutputFileError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return count


def export_facts(project: Project, path: Path, status: str | None = None, search: str | None = None) -> int:
    def rows() -> Iterable[list[object]]:
        for fact in project.queries.facts(status=status, search=search):
            cells = fields_of(fact.request)
            yield [fact.id, fact.status, *(cells[f] for f in FIELDS), fact.batch_id, fact.reason,
                   fact.source_file, fact.source_line, fact.created_at]

    return write_csv(path, FACT_EXPORT_COLUMNS, rows(), projects=[project.folder])


def export_batches(project: Project, path: Path) -> int:
    rows = (
        [b.id, b.method, b.outcome, len(b.fact_ids), b.applied_count, b.started_at, b.finished_at,
         round(b.duration_s, 3), b.state_file, b.state_sha256, b.undone_at, json.dumps(b.hparams, sort_keys=True)]
        for b in project.queries.batches()
    )
    return write_csv(path, BATCH_COLUMNS, rows, projects=[project.folder])


def export_rejected(rows: Sequence[FileRow], path: Path, inputs: Sequence[Path] = (),
                    projects: Sequence[Path] = ()) -> int:
    """The rejected rows with their problems, in the import layout so they can be fixed and re-imported.

    `inputs`: the file the rows came from (never written over); `projects`: the project imported into.
    """
    return write_csv(
        path,
        REJECTED_COLUMNS,
        ([r.line, "; ".join(f"{p.field}: {p.message}" for p in r.problems), *(r.fields.get(f, "") for f in FIELDS)]
         for r in rows),
        inputs,
        projects,
    )
