"""Telling a user what is wrong with the text of a fact file, in words about the file and what to
do, not in the words of Python's codecs and csv module."""

from __future__ import annotations

import csv


def save_as_utf8(start: str) -> str:
    """What to do with text in another encoding, for the program a file of its kind is saved from."""
    if start.lstrip("\ufeff \t\r\n").startswith(("[", "{")):
        return "save it as UTF-8 (in a text editor: Save As, encoding UTF-8)"
    return "save it as UTF-8 (in Excel: 'CSV UTF-8')"


def utf16_without_mark(sample: bytes) -> str | None:
    """The sample as text when it is UTF-16 with no byte order mark: mostly Latin text, so every
    other byte is zero (and the rest are not), which no UTF-8 text and few binary files show."""
    even, odd = sample[0::2], sample[1::2]
    for zeros, others, codec in ((odd, even, "utf-16-le"), (even, odd, "utf-16-be")):
        if len(zeros) >= 2 and zeros.count(0) >= 0.9 * len(zeros) and others.count(0) < 0.1 * len(others):
            return sample[: len(sample) // 2 * 2].decode(codec, "replace")
    return None


def csv_error_text(error: csv.Error) -> str:
    """The csv module's complaint, in words about the file rather than about Python's `open`."""
    if "new-line character seen in unquoted field" in str(error):
        return "a carriage return inside a value that is not in quotes; put the value in double quotes"
    return str(error)
