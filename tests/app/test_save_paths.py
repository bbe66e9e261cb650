"""The app's save dialogs never write over the file being imported or a project's own files: the
answer of the dialog is refused with a message, and nothing is written."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

from PySide6.QtWidgets import QFileDialog

from nse_engine.store import Project

from app.conftest import JOB_TIMEOUT_MS, error_dialogs, wait_idle

ROWS = [
    ["subject", "prompt", "target_new", "target_true"],
    ["Germany", "The capital of {} is", "Canberra", "Berlin"],
    ["Greece", "The official language of {} is", "", "Greek"],  # no new object: rejected
]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _answer_save_dialog(monkeypatch, path: Path) -> None:
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(path), ""))


def _close_dialogs() -> list[str]:
    texts = [box.text() for box in error_dialogs()]
    for box in error_dialogs():
        box.close()
    return texts


def test_saving_rejected_rows_over_the_previewed_file_or_a_project_log_is_refused(qtbot, window, tmp_path,
                                                                                  monkeypatch):
    source = tmp_path / "facts.csv"
    with open(source, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(ROWS)
    folder = tmp_path / "project"
    Project.create(folder).close()
    log_before, source_before = _digest(folder / "project.sqlite"), _digest(source)
    view = window.import_view
    view.preview(str(source))
    qtbot.waitUntil(lambda: view.table.rowCount() == 2, timeout=JOB_TIMEOUT_MS)
    wait_idle(qtbot, window.session)
    assert view.export_button.isEnabled()

    for target in (source, folder / "project.sqlite", folder / "state" / "rejected.csv"):
        _answer_save_dialog(monkeypatch, target)
        view.export_button.click()
        qtbot.waitUntil(lambda: bool(error_dialogs()), timeout=JOB_TIMEOUT_MS)
        wait_idle(qtbot, window.session)
        [text] = _close_dialogs()
        assert str(target) in text
    assert _digest(source) == source_before and _digest(folder / "project.sqlite") == log_before
    assert list((folder / "state").iterdir()) == []
    with Project.open(folder, read_only=True) as project:
        assert project.queries.count_facts() == 0

    rejected = tmp_path / "rejected.csv"  # an ordinary place is still written
    _answer_save_dialog(monkeypatch, rejected)
    view.export_button.click()
    qtbot.waitUntil(rejected.exists, timeout=JOB_TIMEOUT_MS)
    wait_idle(qtbot, window.session)
    assert not error_dialogs()


def test_saving_the_charts_into_a_project_is_refused(qtbot, window, tmp_path, monkeypatch):
    folder = tmp_path / "project"
    Project.create(folder).close()
    log_before = _digest(folder / "project.sqlite")
    view = window.retention_view
    for target in (folder / "project.sqlite", folder / "state" / "retention.png"):
        _answer_save_dialog(monkeypatch, target)
        view.save_png()
        qtbot.waitUntil(lambda: bool(error_dialogs()), timeout=5000)
        [text] = _close_dialogs()
        assert str(target) in text and "project" in text
    assert _digest(folder / "project.sqlite") == log_before
    assert list((folder / "state").iterdir()) == []

    chart = tmp_path / "retention.png"
    _answer_save_dialog(monkeypatch, chart)
    view.save_png()
    assert chart.is_file() and not error_dialogs()
