"""Reading a CSV fact file (the main route): its header, sniffed for the delimiter, then its rows
one at a time, each validated with the line it starts on.

A CSV cell may hold up to MAX_CSV_CELL characters, far more than any field allows, so an overlong
text is named by its field like in JSON; a row with a longer cell still is rejected with that limit
named. Our own CSV exports are recognised by their header and read back to exactly the values that
were exported.
"""

from __future__ import annotations

import csv
from collections import Counter
from typing import Iterator

from nse_engine.errors import ImportFormatError
from nse_engine.fact_files.csv_cells import OUR_EXPORT_HEADERS, restore_formula
from nse_engine.fact_files.file_text import csv_error_text
from nse_engine.fact_files.source import OpenFile, SourceRecord, problem_at
from nse_engine.fact_files.validation import FIELDS, REQUIRED_FIELDS, FactProblem, TokenLimit, fact_from_fields

CSV_DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab"}
HEADER_ALIASES = {"neighbourhood": "neighborhood"}

MAX_CSV_CELL = 16 * 2**20
"""Python's csv stops at 131,072 characters a cell, before validation could name the field (a
10,000,000-character subject is "subject: has 10,000,000 characters", not "a cell too long")."""
csv.field_size_limit(MAX_CSV_CELL)


def csv_facts(source: OpenFile, sample: str) -> tuple[str, Iterator[SourceRecord]]:
    """The format of a CSV fact file and its records, after checking its header (in `sample`)."""
    header_line = sample.split("\n", 1)[0]
    try:
        delimiter, header = sniff_header(header_line)
    except ImportFormatError as exc:
        raise source.fail(str(exc)) from None
    columns = [HEADER_ALIASES.get(h, h) for h in (c.strip().lower() for c in header)]
    missing = [c for c in REQUIRED_FIELDS if c not in columns]
    if len(missing) == len(REQUIRED_FIELDS):
        raise source.fail(
            "does not start with a header row; line 1 must name the columns "
            f"{', '.join(REQUIRED_FIELDS)} (optional: {', '.join(FIELDS[3:])})"
        )
    if missing:
        raise source.fail(f"line 1: missing column {', '.join(repr(c) for c in missing)}")
    repeated = [c for c, n in Counter(columns).items() if n > 1 and c]
    if repeated:
        raise source.fail(f"line 1: column {repeated[0]!r} appears more than once")
    our_export = tuple(columns) in OUR_EXPORT_HEADERS
    ignored = [h for h, c in zip(header, columns) if c not in FIELDS]
    if ignored:
        source.warnings.append(f"ignored columns (line 1): {', '.join(repr(h) for h in ignored)}")
    return f"CSV ({CSV_DELIMITERS[delimiter]}-separated)", _records(source, delimiter, columns, our_export)


def sniff_header(line: str) -> tuple[str, list[str]]:
    """The delimiter under which the header names the most known columns (ties: more columns)."""

    def score(delimiter: str) -> tuple[int, int]:
        cells = next(csv.reader([line], delimiter=delimiter), [])
        names = {HEADER_ALIASES.get(c.strip().lower(), c.strip().lower()) for c in cells}
        return len(names & set(FIELDS)), len(cells)

    try:
        delimiter = max(CSV_DELIMITERS, key=score)
        return delimiter, next(csv.reader([line], delimiter=delimiter), [])
    except csv.Error as exc:
        raise ImportFormatError(f"line 1 is not a valid CSV header: {csv_error_text(exc)}") from None


def _records(source: OpenFile, delimiter: str, columns: list[str], our_export: bool) -> Iterator[SourceRecord]:
    reader = csv.reader(source.lines(), delimiter=delimiter)
    next(reader)  # the header, already read from the sample
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield SourceRecord(start, {}, None, [_csv_problem(exc, start)])
            continue
        if not any(cell.strip() for cell in row):
            continue
        if our_export:
            row = [restore_formula(cell) for cell in row]
        yield _record(start, row, columns, source.token_limit)


def _record(line: int, row: list[str], columns: list[str], token_limit: TokenLimit | None) -> SourceRecord:
    fields = {c: "" for c in FIELDS}
    fields.update({c: v for c, v in zip(columns, row) if c in FIELDS})
    request, problems = fact_from_fields(fields, token_limit)
    extra = [v for v in row[len(columns):] if v.strip()]
    if len(row) < len(columns) or extra:
        problems.append(FactProblem(
            "(row)", "malformed", f"has {len(row)} values but the header has {len(columns)} columns"
        ))
        request = None
    problems = [problem_at(p, line) for p in problems]
    return SourceRecord(line, fields, request, problems, trimmed=any(v != v.strip() for v in row))


def _csv_problem(error: csv.Error, line: int) -> FactProblem:
    if "field larger than field limit" in str(error):
        return FactProblem("(row)", "too_long", (
            f"has a cell longer than {csv.field_size_limit():,} characters, the most a CSV cell may hold; shorten it"
        ), line)
    return FactProblem("(row)", "malformed", f"is not valid CSV: {csv_error_text(error)}", line)
