"""Reading fact files: CSV (the main route) and JSON/JSONL in our, CounterFact's and ZsRE's layouts.

A file is streamed record by record, so a large file is never held in memory whole (except a
JSON array, which is one document). Each record comes out validated, with the line it starts
on; a file that is not readable text of a supported format raises `ImportFormatError` before
or while reading, never a traceback. A CSV cell may hold up to MAX_CSV_CELL characters, far
more than any field allows, so an overlong text is named by its field like in JSON; a row with a
longer cell still is rejected with that limit named. Our own CSV exports are recognised by
their header and read back to exactly the values that were exported.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, Iterator

from nse_engine.facts import EditRequest
from nse_engine.errors import ImportFormatError
from nse_engine.store.csv_cells import OUR_EXPORT_HEADERS, restore_formula
from nse_engine.store.file_text import csv_error_text, save_as_utf8, utf16_without_mark
from nse_engine.store.input_files import open_regular_file
from nse_engine.store.validation import (
    FIELDS,
    LIST_SEPARATOR,
    NEIGHBOR_ARROW,
    REQUIRED_FIELDS,
    FactProblem,
    TokenLimit,
    build_fact,
    fact_from_fields,
)

SAMPLE_BYTES = 64 * 1024
CSV_DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab"}
HEADER_ALIASES = {"neighbourhood": "neighborhood"}

MAX_CSV_CELL = 16 * 2**20
"""Python's csv stops at 131,072 characters a cell, before validation could name the field (a
10,000,000-character subject is "subject: has 10,000,000 characters", not "a cell too long")."""
csv.field_size_limit(MAX_CSV_CELL)


@dataclass
class SourceRecord:
    """One record of a fact file: its cells as text (for an errors file) and the outcome."""

    line: int  # where the record starts; the CSV header is line 1
    fields: dict[str, str]  # in the CSV layout, so rejected rows can be fixed and re-imported
    request: EditRequest | None  # None when the record has problems
    problems: list[FactProblem]
    trimmed: bool = False  # spaces around a value were removed


@dataclass
class RejectedRow:
    line: int
    problems: list[FactProblem]
    fields: dict[str, str]


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
    rejected: list[RejectedRow] = field(default_factory=list)
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


class FactFile:
    """An open fact file: its detected `format` and an iterator over its `records`.

    Use as a context manager; `bytes_read` and `total_bytes` let the caller report progress.
    """

    def __init__(self, path: Path, token_limit: TokenLimit | None = None) -> None:
        self.path = Path(path)
        self.token_limit = token_limit
        self.warnings: list[str] = []
        self.bytes_read = 0
        self._our_export = False
        self._fh: IO[bytes] = open_regular_file(self.path)  # a pipe or a device would hang the reader
        self._stat = os.fstat(self._fh.fileno())
        self.total_bytes = self._stat.st_size
        try:
            self.format, self.records = self._detect()
        except BaseException:
            self._fh.close()
            raise

    def __enter__(self) -> FactFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._fh.close()

    def _fail(self, message: str) -> ImportFormatError:
        return ImportFormatError(f"{self.path.name}: {message}")

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
        raise self._fail(
            f"changed while it was read (it was {self.total_bytes:,} bytes and {size}; reading stopped at line "
            f"{last_line:,}); nothing was imported from it: import it again once it is complete"
        )

    def _detect(self) -> tuple[str, Iterator[SourceRecord]]:
        sample = self._fh.read(SAMPLE_BYTES)
        self._fh.seek(0)
        if sample.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise self._fail(f"is UTF-16 text; {save_as_utf8(sample.decode('utf-16', 'replace'))}")
        utf16 = utf16_without_mark(sample)
        if utf16 is not None:
            raise self._fail(f"is UTF-16 text (without a byte order mark); {save_as_utf8(utf16)}")
        if b"\x00" in sample.split(b"\n", 1)[0] or sample.count(b"\x00") > len(sample) // 10:
            raise self._fail("is a binary file, not CSV or JSON text")
        text = _decode_sample(sample, len(sample) < SAMPLE_BYTES)
        if text is None:
            raise self._fail(f"is not UTF-8 text; {save_as_utf8(sample.decode('latin-1'))}")
        text = text.removeprefix("\ufeff")
        if not text.strip():
            raise self._fail("is empty")
        first = text.lstrip()[0]
        if "\r" in text and "\n" not in text and first != "[":
            raise self._fail("ends its lines with a carriage return only (old Mac style); save it with "
                             "Windows (CRLF) or Unix (LF) line endings")
        if first == "[":
            return self._json_document()
        if first == "{":
            return self._json_lines(text)
        return self._csv(text)

    # -- CSV ---------------------------------------------------------------------------------

    def _csv(self, sample: str) -> tuple[str, Iterator[SourceRecord]]:
        header_line = sample.split("\n", 1)[0]
        try:
            delimiter, header = _sniff_header(header_line)
        except ImportFormatError as exc:
            raise self._fail(str(exc)) from None
        columns = [HEADER_ALIASES.get(h, h) for h in (c.strip().lower() for c in header)]
        missing = [c for c in REQUIRED_FIELDS if c not in columns]
        if len(missing) == len(REQUIRED_FIELDS):
            raise self._fail(
                "does not start with a header row; line 1 must name the columns "
                f"{', '.join(REQUIRED_FIELDS)} (optional: {', '.join(FIELDS[3:])})"
            )
        if missing:
            raise self._fail(f"line 1: missing column {', '.join(repr(c) for c in missing)}")
        repeated = [c for c, n in Counter(columns).items() if n > 1 and c]
        if repeated:
            raise self._fail(f"line 1: column {repeated[0]!r} appears more than once")
        self._our_export = tuple(columns) in OUR_EXPORT_HEADERS
        ignored = [h for h, c in zip(header, columns) if c not in FIELDS]
        if ignored:
            self.warnings.append(f"ignored columns (line 1): {', '.join(repr(h) for h in ignored)}")
        return f"CSV ({CSV_DELIMITERS[delimiter]}-separated)", self._csv_records(delimiter, columns)

    def _csv_records(self, delimiter: str, columns: list[str]) -> Iterator[SourceRecord]:
        reader = csv.reader(self._lines(), delimiter=delimiter)
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
            yield self._csv_record(start, row, columns)

    def _csv_record(self, line: int, row: list[str], columns: list[str]) -> SourceRecord:
        if self._our_export:
            row = [restore_formula(cell) for cell in row]
        fields = {c: "" for c in FIELDS}
        fields.update({c: v for c, v in zip(columns, row) if c in FIELDS})
        request, problems = fact_from_fields(fields, self.token_limit)
        extra = [v for v in row[len(columns):] if v.strip()]
        if len(row) < len(columns) or extra:
            problems.append(FactProblem(
                "(row)", "malformed", f"has {len(row)} values but the header has {len(columns)} columns"
            ))
            request = None
        problems = [_at(p, line) for p in problems]
        return SourceRecord(line, fields, request, problems, trimmed=any(v != v.strip() for v in row))

    def _lines(self) -> Iterator[str]:
        """The file's lines, decoded one at a time (UTF-8 never splits a character across lines)."""
        for number, raw in enumerate(self._fh, start=1):
            self.bytes_read += len(raw)
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise self._fail(f"line {number} is not UTF-8 text; save the file as UTF-8") from None
            yield line.removeprefix("\ufeff") if number == 1 else line

    # -- JSON --------------------------------------------------------------------------------

    def _json_lines(self, sample: str) -> tuple[str, Iterator[SourceRecord]]:
        first_line = sample.lstrip().split("\n", 1)[0]
        if "\n" not in sample and self.total_bytes > SAMPLE_BYTES:  # a first record longer than the sample
            first_line = next((raw for raw in self._fh if raw.strip()), b"").decode("utf-8", "replace")
            self._fh.seek(0)
        try:
            first = json.loads(first_line)
        except json.JSONDecodeError:
            return self._json_document()
        layout = _layout_of(first, self._fail)
        return f"{layout.name} (JSONL)", self._jsonl_records(layout)

    def _jsonl_records(self, layout: _Layout) -> Iterator[SourceRecord]:
        for number, line in enumerate(self._lines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                problem = FactProblem("(record)", "malformed", f"is not valid JSON: {exc.msg}", number)
                yield SourceRecord(number, {}, None, [problem])
                continue
            yield self._json_record(number, record, layout)

    def _json_document(self) -> tuple[str, Iterator[SourceRecord]]:
        """A JSON file that is one document: an array of records, or a single record."""
        text = "".join(self._lines())
        if text.lstrip().startswith("["):
            items, container = _array_items(text, self._fail), "JSON array"
        else:
            items, container = _single_document(text, self._fail), "JSON"
        first = next(items, None)
        if first is None:
            raise self._fail("holds an empty JSON array: no facts")
        layout = _layout_of(first[1], self._fail)
        records = (self._json_record(n, r, layout) for n, r in itertools.chain([first], items))
        return f"{layout.name} ({container})", records

    def _json_record(self, line: int, record: Any, layout: _Layout) -> SourceRecord:
        if not isinstance(record, dict):
            problem = FactProblem("(record)", "malformed", f"is a JSON {type(record).__name__}, not an object", line)
            return SourceRecord(line, {}, None, [problem])
        unused = set(record) - layout.keys
        if unused:
            note = f"ignored keys: {', '.join(sorted(unused))}"
            if note not in self.warnings:
                self.warnings.append(note)
        values, problems = layout.extract(record)
        request, more = build_fact(**values, token_limit=self.token_limit)
        reported = {p.field for p in problems}
        problems += [p for p in more if p.field not in reported]
        if problems:
            request = None
        elsewhere = {(layout.rename(p).field, p.code) for p in problems if p.field != "questions"}
        problems = [_at(layout.rename(p), line) for p in problems  # ZsRE's src, prompt and question, is blamed once
                    if p.field != "questions" or (layout.rename(p).field, p.code) not in elsewhere]
        fields = _fields_of_values(values)
        return SourceRecord(line, fields, request, problems, trimmed=_any_trimmed(values))


# -- layouts of JSON records -------------------------------------------------------------------


@dataclass(frozen=True)
class _Layout:
    name: str
    keys: frozenset[str]  # top-level keys it reads
    extract: Callable[[dict], tuple[dict[str, Any], list[FactProblem]]]
    field_names: dict[str, str]  # our field name -> the name in this layout, for messages

    def rename(self, problem: FactProblem) -> FactProblem:
        return FactProblem(self.field_names.get(problem.field, problem.field), problem.code, problem.message, problem.line)


class _Reader:
    """Typed access to a JSON record's values; a wrong type or a missing key becomes a problem."""

    def __init__(self, record: dict) -> None:
        self.record = record
        self.problems: list[FactProblem] = []

    def get(self, path: str, field: str, required: bool = True) -> Any:
        value: Any = self.record
        for key in path.split("."):
            if not isinstance(value, dict) or key not in value or value[key] is None:
                if required:
                    self.problems.append(FactProblem(field, "missing", f"missing ({path})"))
                return None
            value = value[key]
        return value

    def text(self, path: str, field: str, required: bool = True) -> str | None:
        value = self.get(path, field, required)
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        self.problems.append(FactProblem(field, "malformed", f"{path} is a {type(value).__name__}, not text"))
        return None

    def texts(self, path: str, field: str) -> list[str]:
        value = self.get(path, field, required=False)
        if value is None:
            return []
        if isinstance(value, str):
            return [value]
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
        self.problems.append(FactProblem(field, "malformed", f"{path} must be a list of texts"))
        return []


def _nse_record(record: dict) -> tuple[dict[str, Any], list[FactProblem]]:
    r = _Reader(record)
    neighbors: list[tuple[str, str]] = []
    raw_neighbors = r.get("neighborhood", "neighborhood", required=False) or []
    if not isinstance(raw_neighbors, list):
        raw_neighbors = [raw_neighbors]
    for item in raw_neighbors:
        if isinstance(item, dict) and isinstance(item.get("prompt"), str) and isinstance(item.get("target"), str):
            neighbors.append((item["prompt"], item["target"]))
        else:
            r.problems.append(FactProblem("neighborhood", "malformed", "items must be objects with text 'prompt' and 'target'"))
            break
    paraphrase_key = "paraphrase_prompts" if "paraphrase_prompts" in record else "paraphrases"
    values = {
        "subject": r.text("subject", "subject") or "",
        "prompt": r.text("prompt", "prompt") or "",
        "target_new": r.text("target_new", "target_new") or "",
        "target_true": r.text("target_true", "target_true", required=False),
        "paraphrases": r.texts(paraphrase_key, "paraphrases"),
        "questions": r.texts("questions", "questions"),
        "neighborhood": neighbors,
        "relation": r.text("relation", "relation", required=False),
    }
    return values, r.problems


def _counterfact_record(record: dict) -> tuple[dict[str, Any], list[FactProblem]]:
    r = _Reader(record)
    target_true = r.text("requested_rewrite.target_true.str", "target_true", required=False)
    neighbor_prompts = r.texts("neighborhood_prompts", "neighborhood")
    if neighbor_prompts and not target_true:
        r.problems.append(FactProblem("neighborhood", "missing", "neighborhood_prompts need target_true.str as their answer"))
    values = {
        "subject": r.text("requested_rewrite.subject", "subject") or "",
        "prompt": r.text("requested_rewrite.prompt", "prompt") or "",
        "target_new": r.text("requested_rewrite.target_new.str", "target_new") or "",
        "target_true": target_true,
        "paraphrases": r.texts("paraphrase_prompts", "paraphrases"),
        "questions": [],
        "neighborhood": [(p, target_true or "") for p in neighbor_prompts],
        "relation": r.text("requested_rewrite.relation_id", "relation", required=False),
    }
    return values, r.problems


def _zsre_record(record: dict) -> tuple[dict[str, Any], list[FactProblem]]:
    r = _Reader(record)
    answers = r.texts("answers", "target_true")
    loc, loc_answer = r.text("loc", "neighborhood", required=False), r.text("loc_ans", "neighborhood", required=False)
    if bool(loc) != bool(loc_answer):
        r.problems.append(FactProblem("neighborhood", "missing", "'loc' and 'loc_ans' come together"))
    if len(answers) > 1:
        r.problems.append(FactProblem(
            "target_true", "several_answers", f"has {len(answers)} answers; NSE keeps one target_true, so split the record"
        ))
    question = r.text("src", "prompt") or ""
    values = {
        "subject": r.text("subject", "subject") or "",
        "prompt": question,
        "target_new": r.text("alt", "target_new") or "",
        "target_true": answers[0] if answers else None,
        "paraphrases": r.texts("rephrase", "paraphrases"),
        "questions": [question] if question.strip() else [],  # src is what a user would ask in chat
        "neighborhood": [(loc, loc_answer)] if loc and loc_answer else [],
        "relation": None,
    }
    return values, r.problems


_NSE = _Layout(
    "NSE facts",
    frozenset({"subject", "prompt", "target_new", "target_true", "paraphrase_prompts", "paraphrases", "questions",
               "neighborhood", "relation"}),
    _nse_record,
    {"paraphrases": "paraphrase_prompts"},
)
_COUNTERFACT = _Layout(
    "CounterFact",
    frozenset({"requested_rewrite", "paraphrase_prompts", "neighborhood_prompts"}),
    _counterfact_record,
    {
        "subject": "requested_rewrite.subject",
        "prompt": "requested_rewrite.prompt",
        "target_new": "requested_rewrite.target_new.str",
        "target_true": "requested_rewrite.target_true.str",
        "relation": "requested_rewrite.relation_id",
        "paraphrases": "paraphrase_prompts",
        "neighborhood": "neighborhood_prompts",
    },
)
_ZSRE = _Layout(
    "ZsRE",
    frozenset({"subject", "src", "alt", "answers", "rephrase", "loc", "loc_ans"}),
    _zsre_record,
    {"prompt": "src", "target_new": "alt", "target_true": "answers", "paraphrases": "rephrase", "questions": "src",
     "neighborhood": "loc/loc_ans"},
)


def _layout_of(record: Any, fail: Callable[[str], ImportFormatError]) -> _Layout:
    """The layout of a file, told by its first record."""
    if isinstance(record, dict):
        if "requested_rewrite" in record:
            return _COUNTERFACT
        if "src" in record and "alt" in record:
            return _ZSRE
        if "subject" in record and "prompt" in record:
            return _NSE
        keys = ", ".join(sorted(map(str, record))[:10]) or "none"
        raise fail(
            f"the first record (keys: {keys}) is neither our fact layout (subject, prompt, target_new), "
            "CounterFact (requested_rewrite) nor ZsRE (src, alt)"
        )
    raise fail(f"the first record is a JSON {type(record).__name__}, not an object")


# -- helpers -----------------------------------------------------------------------------------


def _decode_sample(sample: bytes, complete: bool) -> str | None:
    """The sample as text, or None if it is not UTF-8 (a character cut at its end is fine)."""
    try:
        return sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        if not complete and exc.start >= len(sample) - 3 and exc.reason == "unexpected end of data":
            return sample[: exc.start].decode("utf-8")
        return None


def _sniff_header(line: str) -> tuple[str, list[str]]:
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


def _array_items(text: str, fail: Callable[[str], ImportFormatError]) -> Iterator[tuple[int, Any]]:
    """The items of a JSON array, parsed one at a time, each with the line it starts on."""
    decoder = json.JSONDecoder()
    lines = _LineCounter(text)

    def skip_space(position: int) -> int:
        while position < len(text) and text[position] in " \t\r\n":
            position += 1
        return position

    position = skip_space(text.index("[") + 1)
    if text.startswith("]", position):
        position = skip_space(position + 1)
    else:
        while True:
            try:
                item, end = decoder.raw_decode(text, position)
            except json.JSONDecodeError as exc:
                raise fail(f"is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
            yield lines.line_at(position), item
            position = skip_space(end)
            if text.startswith(",", position):
                position = skip_space(position + 1)
                continue
            if text.startswith("]", position):
                position = skip_space(position + 1)
                break
            raise fail(f"is not valid JSON: expected ',' or ']' (line {lines.line_at(position)})")
    if position < len(text):
        raise fail(f"is not valid JSON: extra data after the array (line {lines.line_at(position)})")


def _single_document(text: str, fail: Callable[[str], ImportFormatError]) -> Iterator[tuple[int, Any]]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise fail(f"is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    yield _LineCounter(text).line_at(len(text) - len(text.lstrip())), document


class _LineCounter:
    """Line numbers of increasing positions in a text, counted incrementally."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.position = 0
        self.line = 1

    def line_at(self, position: int) -> int:
        self.line += self.text.count("\n", self.position, position)
        self.position = position
        return self.line


def _csv_problem(error: csv.Error, line: int) -> FactProblem:
    if "field larger than field limit" in str(error):
        return FactProblem("(row)", "too_long", (
            f"has a cell longer than {csv.field_size_limit():,} characters, the most a CSV cell may hold; shorten it"
        ), line)
    return FactProblem("(row)", "malformed", f"is not valid CSV: {csv_error_text(error)}", line)


def _at(problem: FactProblem, line: int) -> FactProblem:
    return FactProblem(problem.field, problem.code, problem.message, line)


def _fields_of_values(values: dict[str, Any]) -> dict[str, str]:
    return {
        "subject": values["subject"],
        "prompt": values["prompt"],
        "target_new": values["target_new"],
        "target_true": values["target_true"] or "",
        "paraphrases": f" {LIST_SEPARATOR} ".join(values["paraphrases"]),
        "questions": f" {LIST_SEPARATOR} ".join(values["questions"]),
        "neighborhood": f" {LIST_SEPARATOR} ".join(f"{p} {NEIGHBOR_ARROW} {t}" for p, t in values["neighborhood"]),
        "relation": values["relation"] or "",
    }


def _any_trimmed(values: dict[str, Any]) -> bool:
    texts = [v for v in values.values() if isinstance(v, str)]
    texts += [t for v in values.values() if isinstance(v, list) for item in v for t in (item if isinstance(item, tuple) else (item,))]
    return any(t != t.strip() for t in texts)
