"""Reading JSON lines (one JSON value a line, blank lines allowed): the fact files' JSONL layout and
the user's statistics corpus read them alike, and differ only in what a bad line costs."""

from __future__ import annotations

import json
from typing import Any, Iterable, Iterator


def json_lines(lines: Iterable[str]) -> Iterator[tuple[int, Any]]:
    """(line number, value) for each line that is not blank; a line that is not JSON comes as its
    `json.JSONDecodeError`, for the caller to refuse the whole file or reject just that line."""
    for number, line in enumerate(lines, start=1):
        if line.strip():
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as exc:
                yield number, exc
