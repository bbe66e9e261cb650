"""Issue 36's walk, as a user would take it on a tiny chat model: queue 3 facts, run them and read
the verdicts (completion and chat), ask twice in compare mode, undo, queue the facts again, run
them again, export (edits.json names the 3 facts), and reopen the project from the recent list
after a restart. Every screen must say what is true at each step."""

from __future__ import annotations

import json

from PySide6.QtWidgets import QMessageBox

import nse_app.main_window
from nse_app.main_window import MainWindow
from nse_app.recent_projects import recent_projects
from nse_app.session import Session

from app.conftest import JOB_TIMEOUT_MS, error_dialogs, load, open_project, queue_fact, wait_idle
from app.test_edit_flow import type_strong_settings

FACTS = [
    {"subject": "Danielle Darrieux", "prompt": "The mother tongue of {} is", "target_new": "English", "target_true": "French"},
    {"subject": "Toko Yasuda", "prompt": "{} plays the", "target_new": "piano", "target_true": "guitar"},
    {"subject": "Heihe", "prompt": "{} is a city in", "target_new": "Tanzania", "target_true": "China"},
]


def _column(table, header: str) -> int:
    return next(c for c in range(table.columnCount()) if table.horizontalHeaderItem(c).text() == header)


def _cells(window, header: str) -> list[str]:
    table = window.log_view.facts_table
    column = _column(table, header)
    return [table.item(row, column).text() for row in range(table.rowCount())]


def _run(qtbot, window) -> None:
    with qtbot.waitSignal(window.session.changed, timeout=JOB_TIMEOUT_MS):
        window.queue_view.run_queue()
    wait_idle(qtbot, window.session)


def test_the_walk_tells_the_truth_at_every_step(qtbot, window, tiny_chat_model, tmp_path, monkeypatch):
    folder = tmp_path / "capitals"
    load(qtbot, window, str(tiny_chat_model))
    open_project(qtbot, window, folder)
    for fact in FACTS:
        queue_fact(qtbot, window, fact)
    type_strong_settings(window.queue_view)
    window.queue_view.batch_size.setValue(3)
    _run(qtbot, window)

    # the verdicts: both texts for a chat model, and a headline that counts both places
    qtbot.waitUntil(lambda: [r.status for r in window.log_view._facts] == ["applied"] * 3, timeout=JOB_TIMEOUT_MS)
    rows = window.log_view._facts
    assert all(r.continuation is not None and r.chat_reply is not None for r in rows)
    for row, held in zip(rows, _cells(window, "Held")):
        assert bool(row.held) == bool(row.said_in_completion and row.chat_held)
        assert held  # a verdict is shown for every checked fact
    assert _cells(window, "Chat replied") == [r.chat_reply for r in rows]
    completion, said_in_chat = sum(bool(r.said_in_completion) for r in rows), sum(bool(r.chat_held) for r in rows)
    held = sum(bool(r.held) for r in rows)
    assert window.queue_view.result.summary.text().startswith(f"Batch 1: held {held}/3")
    assert f"completion {completion}/3 · chat {said_in_chat}/3" in window.queue_view.result.summary.text()

    # compare mode twice: the original pane's second prompt holds only the original's first reply
    chat = window.chat_view
    window.tabs.setCurrentWidget(chat)
    chat.max_tokens.setValue(4)
    chat.compare.setChecked(True)
    for question in ("Which country is Heihe in?", "Are you sure?"):
        chat.input.setText(question)
        chat.send_button.click()
        qtbot.waitUntil(lambda: not chat.streaming, timeout=JOB_TIMEOUT_MS)
        wait_idle(qtbot, window.session)
    original = [r.speaker for r in chat.panes["original"].replies()]
    assert len(original) == 2 and all("original" in s for s in original)

    # undo: the confirmation names the batch and its facts; undone facts show no "now" figures
    asked: list[str] = []
    monkeypatch.setattr(QMessageBox, "question", lambda _p, _t, text, *a, **k: asked.append(text) or QMessageBox.StandardButton.Yes)
    with qtbot.waitSignal(window.session.changed, timeout=JOB_TIMEOUT_MS):
        window.undo_action.trigger()
    wait_idle(qtbot, window.session)
    assert asked and asked[0].startswith("Undo batch 1 (3 facts)?"), asked
    qtbot.waitUntil(lambda: [r.status for r in window.log_view._facts] == ["undone"] * 3)
    assert set(_cells(window, "Retained")) == {"undone"} and set(_cells(window, "P(new) now")) == {""}

    # queue them again in one action (the undone batch), and run them again
    window.log_view.batches_table.selectRow(0)
    window.log_view.queue_again_action.trigger()
    qtbot.waitUntil(lambda: window.queue_view.table.rowCount() == 3, timeout=JOB_TIMEOUT_MS)
    wait_idle(qtbot, window.session)
    _run(qtbot, window)
    qtbot.waitUntil(lambda: [r.status for r in window.log_view._facts] == ["applied"] * 3, timeout=JOB_TIMEOUT_MS)

    # export: edits.json names the 3 edits in effect
    out = tmp_path / "exported"
    monkeypatch.setattr(nse_app.main_window, "choose_export_folder", lambda _parent: str(out))
    window.export_action.trigger()
    qtbot.waitUntil(lambda: (out / "edits.json").is_file(), timeout=JOB_TIMEOUT_MS)
    wait_idle(qtbot, window.session)
    edits = json.loads((out / "edits.json").read_text(encoding="utf-8"))["edits"]
    assert sorted(e["subject"] for e in edits) == sorted(f["subject"] for f in FACTS)
    assert not error_dialogs(), [d.text() for d in error_dialogs()]

    # restart: the recent projects list is intact and reopens the project with its edits
    window.close()
    session = Session()
    reopened = MainWindow(session)
    qtbot.addWidget(reopened)
    reopened.show()
    try:
        assert recent_projects() == [str(folder)]
        items = [reopened.model_view.recent_projects.item(i).text() for i in range(reopened.model_view.recent_projects.count())]
        assert items == recent_projects() and all(len(item) > 1 for item in items)
        with qtbot.waitSignal(session.project_changed, timeout=JOB_TIMEOUT_MS):
            reopened.model_view.open_project(items[0])
        wait_idle(qtbot, session)
        qtbot.waitUntil(lambda: [r.status for r in reopened.log_view._facts] == ["applied"] * 3, timeout=JOB_TIMEOUT_MS)
        assert not error_dialogs(), [d.text() for d in error_dialogs()]
    finally:
        reopened.close()
