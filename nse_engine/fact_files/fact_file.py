"""A fact file, opened: its detected format and its records, streamed one at a time.

A file is read record by record, so a large file is never held in memory whole (except a JSON
document, which is decoded whole). Each record comes out validated, with the line it starts on; a
file that is not readable text of a supported format raises `ImportFormatError` before or while
reading, never a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from nse_engine.fact_files.csv_facts import csv_facts
from nse_engine.fact_files.json_facts import json_document_facts, jsonl_facts
from nse_engine.fact_files.sniff import JSON_DOCUMENT, JSON_LINES, SAMPLE_BYTES, sniff
from nse_engine.fact_files.source import OpenFile, SourceRecord
from nse_engine.fact_files.validation import TokenLimit


class FactFile(OpenFile):
    """An open fact file: its detected `format` and an iterator over its `records`.

    Use as a context manager; `bytes_read` and `total_bytes` let the caller report progress.
    """

    format: str
    records: Iterator[SourceRecord]

    def __init__(self, path: Path, token_limit: TokenLimit | None = None) -> None:
        super().__init__(path, token_limit)
        try:
            sample = self.handle.read(SAMPLE_BYTES)
            self.handle.seek(0)
            kind, text = sniff(sample, len(sample) < SAMPLE_BYTES, self.fail)
            if kind == JSON_DOCUMENT:
                self.format, self.records = json_document_facts(self)
            elif kind == JSON_LINES:
                self.format, self.records = jsonl_facts(self, text)
            else:
                self.format, self.records = csv_facts(self, text)
        except BaseException:
            self.handle.close()
            raise

    def __enter__(self) -> FactFile:
        return self
