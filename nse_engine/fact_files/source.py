"""An open fact file as its readers see it, and the records they make of it.

The file is opened as a regular file only (a pipe or a device would hang the reader) and read
line by line, so a large file is never held in memory whole; `bytes_read` lets the caller report
progress, and `check_unchanged` refuses a file that changed while it was read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator

from nse_engine.errors import ImportFormatError
from nse_engine.facts import EditRequest
from nse_engine.fact_files.input_files import open_regular_file
from nse_engine.fact_files.validation import FactProblem, TokenLimit


@dataclass
class SourceRecord:
    """One record of a fact file: its cells as text (for an errors file) and the outcome."""

    line: int  # where the record starts; the CSV header is line 1
    fields: dict[str, str]  # in the CSV layout, so rejected rows can be fixed and re-imported
    request: EditRequest | None  # None when the record has problems
    problems: list[FactProblem]
    trimmed: bool = False  # spaces around a value were removed


def problem_at(problem: FactProblem, line: int) -> FactProblem:
    """The same problem, told at the line of its record."""
    return FactProblem(problem.field, problem.code, problem.message, line)


class OpenFile:
    """A fact file open for reading, with the warnings its readers collect. Use as a context manager."""

    def __init__(self, path: Path, token_limit: TokenLimit | None = None) -> None:
        self.path = Path(path)
        self.token_limit = token_limit
        self.warnings: list[str] = []
        self.bytes_read = 0
        self.handle: IO[bytes] = open_regular_file(self.path)
        self._stat = os.fstat(self.handle.fileno())
        self.total_bytes = self._stat.st_size

    def __enter__(self) -> OpenFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.handle.close()

    def fail(self, message: str) -> ImportFormatError:
        """The error that names this file and what is wrong with it."""
        return ImportFormatError(f"{self.path.name}: {message}")

    def lines(self) -> Iterator[str]:
        """The file's lines, decoded one at a time (UTF-8 never splits a character across lines)."""
        for number, raw in enumerate(self.handle, start=1):
            self.bytes_read += len(raw)
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise self.fail(f"line {number} is not UTF-8 text; save the file as UTF-8") from None
            yield line.removeprefix("\ufeff") if number == 1 else line

    def check_unchanged(self, last_line: int) -> None:
        """Raise `ImportFormatError` if the file changed while it was read (cut short by a copy or a
        download still writing it): its rows read so far are not a whole file, so none may be kept."""
        try:
            now = self.path.stat()
        except OSError:
            now = None
        if now is not None and (now.st_size, now.st_mtime_ns) == (self._stat.st_size, self._stat.st_mtime_ns) \
                and self.bytes_read == self.total_bytes:
            return
        size = "is gone" if now is None else f"is now {now.st_size:,} bytes"
        raise self.fail(
            f"changed while it was read (it was {self.total_bytes:,} bytes and {size}; reading stopped at line "
            f"{last_line:,}); nothing was imported from it: import it again once it is complete"
        )
