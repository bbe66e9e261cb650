"""Reading a JSON fact file: JSON lines (one record a line, read one line at a time), or one JSON
document (an array of records, or a single record), which is decoded whole.

The records of an array are decoded one at a time by the json module's `raw_decode`, so each knows
the line it starts on (for its problems) and the first ones can be checked while the rest wait; a
file that is not valid JSON is refused with the json module's own message, which names the line
and column.
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any, Iterator, NoReturn

from nse_engine.errors import ImportFormatError
from nse_engine.fact_files.json_layouts import Layout, any_trimmed, fields_of_values, layout_of
from nse_engine.fact_files.sniff import SAMPLE_BYTES
from nse_engine.fact_files.source import OpenFile, SourceRecord, problem_at
from nse_engine.fact_files.validation import FactProblem, build_fact
from nse_engine.json_lines import json_lines

_SPACE = json.decoder.WHITESPACE  # what JSON allows between values, as the json module reads it
_NEXT = re.compile(rf"{_SPACE.pattern}([,\]]){_SPACE.pattern}")  # what may follow a record of an array


def jsonl_facts(source: OpenFile, sample: str) -> tuple[str, Iterator[SourceRecord]]:
    """The format and records of a file that starts with "{": JSON lines, unless its first line
    is not a whole record (then it is one JSON document over several lines)."""
    first_line = sample.lstrip().split("\n", 1)[0]
    if "\n" not in sample and source.total_bytes > SAMPLE_BYTES:  # a first record longer than the sample
        first_line = next((raw for raw in source.handle if raw.strip()), b"").decode("utf-8", "replace")
        source.handle.seek(0)
    try:
        first = json.loads(first_line)
    except json.JSONDecodeError:
        return json_document_facts(source)
    layout = layout_of(first, source.fail)
    return f"{layout.name} (JSONL)", _jsonl_records(source, layout)


def json_document_facts(source: OpenFile) -> tuple[str, Iterator[SourceRecord]]:
    """The format and records of a JSON file that is one document: an array of records, or a single record."""
    text = "".join(source.lines())
    if text.lstrip().startswith("["):
        items, container = array_items(text, source), "JSON array"
    else:
        items, container = _single_document(text, source), "JSON"
    first = next(items, None)
    if first is None:
        raise source.fail("holds an empty JSON array: no facts")
    layout = layout_of(first[1], source.fail)
    records = (_json_record(source, n, r, layout) for n, r in itertools.chain([first], items))
    return f"{layout.name} ({container})", records


def array_items(text: str, source: OpenFile) -> Iterator[tuple[int, Any]]:
    """The items of the JSON array `text`, decoded one at a time, each with the line it starts on."""
    decoder = json.JSONDecoder()
    position = _SPACE.match(text, text.index("[") + 1).end()
    line, counted = 1, 0
    if text.startswith("]", position):
        following = _NEXT.match(text, position)
    else:
        while True:
            try:
                item, end = decoder.raw_decode(text, position)
            except json.JSONDecodeError:
                _refuse(text, source)
            line, counted = line + text.count("\n", counted, position), position
            yield line, item
            following = _NEXT.match(text, end)
            if following is None or following.group(1) == "]":
                break
            position = following.end()
    if following is None or following.end() < len(text):
        _refuse(text, source)


def _refuse(text: str, source: OpenFile) -> NoReturn:
    """Refuse an array that is not valid JSON with the json module's message on where it is not."""
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        raise _not_json(exc, source) from None
    raise source.fail("is not a JSON array of records")


def _not_json(error: json.JSONDecodeError, source: OpenFile) -> ImportFormatError:
    return source.fail(f"is not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})")


def _single_document(text: str, source: OpenFile) -> Iterator[tuple[int, Any]]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _not_json(exc, source) from None
    yield text[: len(text) - len(text.lstrip())].count("\n") + 1, document


def _jsonl_records(source: OpenFile, layout: Layout) -> Iterator[SourceRecord]:
    for number, record in json_lines(source.lines()):
        if isinstance(record, json.JSONDecodeError):
            problem = FactProblem("(record)", "malformed", f"is not valid JSON: {record.msg}", number)
            yield SourceRecord(number, {}, None, [problem])
        else:
            yield _json_record(source, number, record, layout)


def _json_record(source: OpenFile, line: int, record: Any, layout: Layout) -> SourceRecord:
    if not isinstance(record, dict):
        problem = FactProblem("(record)", "malformed", f"is a JSON {type(record).__name__}, not an object", line)
        return SourceRecord(line, {}, None, [problem])
    unused = set(record) - layout.keys
    if unused:
        note = f"ignored keys: {', '.join(sorted(unused))}"
        if note not in source.warnings:
            source.warnings.append(note)
    values, problems = layout.extract(record)
    request, more = build_fact(**values, token_limit=source.token_limit)
    reported = {p.field for p in problems}
    problems += [p for p in more if p.field not in reported]
    if problems:
        request = None
    elsewhere = {(layout.rename(p).field, p.code) for p in problems if p.field != "questions"}
    problems = [problem_at(layout.rename(p), line) for p in problems  # ZsRE's src, prompt and question, is blamed once
                if p.field != "questions" or (layout.rename(p).field, p.code) not in elsewhere]
    return SourceRecord(line, fields_of_values(values), request, problems, trimmed=any_trimmed(values))
