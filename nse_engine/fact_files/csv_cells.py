"""The cells and headers of the CSV files we write, and how our importer reads them back.

A cell a spreadsheet would run as a formula (starting with = + - @, tab or carriage return,
after any apostrophes) gets one more apostrophe in front, so opening an export never executes
anything. Our importer recognises our own exports by their header and takes that apostrophe
off again, so an export re-imports to exactly the values that went out.
"""

from __future__ import annotations

import re

from nse_engine.fact_files.validation import FIELDS

FACT_EXPORT_COLUMNS = ("id", "status", *FIELDS, "batch_id", "reason", "source_file", "source_line", "created_at")
REJECTED_COLUMNS = ("line", "problems", *FIELDS)
_BEFORE_QUESTIONS = tuple(f for f in FIELDS if f != "questions")  # exports written before facts had questions
OUR_EXPORT_HEADERS = (
    FACT_EXPORT_COLUMNS, REJECTED_COLUMNS,
    ("id", "status", *_BEFORE_QUESTIONS, *FACT_EXPORT_COLUMNS[2 + len(FIELDS):]),
    ("line", "problems", *_BEFORE_QUESTIONS),
)

_ESCAPED = re.compile(r"'*[=+\-@\t\r]")


def neutralise_formula(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if _ESCAPED.match(text) else text


def restore_formula(cell: str) -> str:
    """The inverse of `neutralise_formula`, for cells of our own exports."""
    return cell[1:] if cell.startswith("'") and _ESCAPED.match(cell[1:]) else cell
