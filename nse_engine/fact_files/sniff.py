"""Telling what a fact file is from its first bytes: CSV, a JSON document or JSON lines, or
something we refuse at once (UTF-16, binary, another encoding, empty, old Mac line endings)
with what to do about it."""

from __future__ import annotations

from typing import Callable

from nse_engine.errors import ImportFormatError
from nse_engine.fact_files.file_text import save_as_utf8, utf16_without_mark

SAMPLE_BYTES = 64 * 1024
JSON_DOCUMENT, JSON_LINES, CSV = "JSON document", "JSON lines", "CSV"


def sniff(sample: bytes, complete: bool, fail: Callable[[str], ImportFormatError]) -> tuple[str, str]:
    """(JSON_DOCUMENT, JSON_LINES or CSV, the sample as text) for the first SAMPLE_BYTES of a file
    (`complete`: the whole file); raises `fail(...)` for a file no reader can read."""
    if sample.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise fail(f"is UTF-16 text; {save_as_utf8(sample.decode('utf-16', 'replace'))}")
    utf16 = utf16_without_mark(sample)
    if utf16 is not None:
        raise fail(f"is UTF-16 text (without a byte order mark); {save_as_utf8(utf16)}")
    if b"\x00" in sample.split(b"\n", 1)[0] or sample.count(b"\x00") > len(sample) // 10:
        raise fail("is a binary file, not CSV or JSON text")
    text = _decode_sample(sample, complete)
    if text is None:
        raise fail(f"is not UTF-8 text; {save_as_utf8(sample.decode('latin-1'))}")
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise fail("is empty")
    first = text.lstrip()[0]
    if "\r" in text and "\n" not in text and first != "[":
        raise fail("ends its lines with a carriage return only (old Mac style); save it with "
                   "Windows (CRLF) or Unix (LF) line endings")
    kind = JSON_DOCUMENT if first == "[" else JSON_LINES if first == "{" else CSV
    return kind, text


def _decode_sample(sample: bytes, complete: bool) -> str | None:
    """The sample as text, or None if it is not UTF-8 (a character cut at its end is fine)."""
    try:
        return sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        if not complete and exc.start >= len(sample) - 3 and exc.reason == "unexpected end of data":
            return sample[: exc.start].decode("utf-8")
        return None
