"""What importing a fact file into a project did: the rows imported, rejected (with their problems
and cells, for an errors file: records.FileRow) and skipped because the project already has them."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from nse_engine.store.records import FileRow


@dataclass
class SkippedRow:
    """A row that asks for what the project already has: a queued fact, or an applied one."""

    line: int
    fact_id: int  # the fact it repeats
    status: str  # "queued" or "applied"
    batch_id: int | None  # the batch that applied it

    def __str__(self) -> str:
        if self.status == "applied":
            return f"line {self.line}: already applied in batch {self.batch_id} (fact {self.fact_id})"
        return f"line {self.line}: already queued as fact {self.fact_id}"


@dataclass
class ImportReport:
    """What an import did (or, for a dry run, would do)."""

    source: Path
    format: str
    rows_read: int = 0
    imported_ids: list[int] = field(default_factory=list)
    rejected: list[FileRow] = field(default_factory=list)
    skipped: list[SkippedRow] = field(default_factory=list)  # already queued or applied: not imported again
    warnings: list[str] = field(default_factory=list)
    trimmed_rows: int = 0
    dry_run: bool = False

    @property
    def imported(self) -> int:
        return len(self.imported_ids)

    def reasons(self) -> Counter[str]:
        """How many rejected rows had each kind of problem (a row may count under several)."""
        return Counter(code for row in self.rejected for code in {p.code for p in row.problems})
