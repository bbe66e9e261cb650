"""The Qt binding must not leak references to None: PySide6 6.12.0 on Python 3.11 drops one on
every Qt call that returns nothing, and after about ten thousand such calls the interpreter aborts
("Fatal Python error: none_dealloc"): a project with 30,000 queued facts crashed the app on open.
pyproject.toml pins a PySide6 without the bug; this test fails on one that has it."""

from __future__ import annotations

import sys

import pytest
from PySide6.QtWidgets import QLabel, QProgressBar, QTableWidget, QTableWidgetItem

CALLS = 300_000
CHUNK = 1_000  # checked after every chunk, long before a leak could bring None's count to zero


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="None is immortal from Python 3.12: its count never moves")
def test_qt_calls_that_return_nothing_keep_nones_reference_count(qtbot) -> None:
    label, bar, table = QLabel(), QProgressBar(), QTableWidget(1, 1)
    for widget in (label, bar, table):
        qtbot.addWidget(widget)
    item = QTableWidgetItem()
    table.setItem(0, 0, item)
    calls = (
        lambda i: label.setText(str(i)),
        lambda i: bar.setValue(i % 100),
        lambda i: label.setEnabled(bool(i % 2)),
        lambda i: item.setText(str(i)),
        lambda i: label.setToolTip(str(i)),
    )
    before = sys.getrefcount(None)
    for start in range(0, CALLS, CHUNK):
        for i in range(start, start + CHUNK):
            calls[i % len(calls)](i)
        lost = before - sys.getrefcount(None)
        assert lost < CHUNK // 2, (
            f"None lost {lost} references after {start + CHUNK:,} Qt calls: this PySide6 "
            f"would abort the app (pin one without the bug in pyproject.toml)"
        )
