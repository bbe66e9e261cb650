"""Importing a CSV with one bad row, and a streamed chat round trip."""

from __future__ import annotations

import csv

from PySide6.QtWidgets import QFileDialog

from app.conftest import JOB_TIMEOUT_MS, error_dialogs, load, wait_idle

HEADER = ["subject", "prompt", "target_new", "target_true", "paraphrases", "neighborhood", "relation"]
ROWS = [
    ["Germany", "The capital of {} is", "Canberra", "Berlin", "The capital city of Germany is",
     "The capital of Poland is => Warsaw", "capital"],
    ["Greece", "The official language of {} is", "", "Greek", "", "", "language"],  # no new object
    ["Heihe", "{} is a city in the country of", "Tanzania", "China", "", "", "city_country"],
]


def test_import_a_csv_with_one_bad_row(qtbot, project_window, tmp_path, monkeypatch):
    window = project_window
    source = tmp_path / "facts.csv"
    with open(source, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([HEADER, *ROWS])
    view = window.import_view
    window.tabs.setCurrentWidget(view)
    view.preview(str(source))
    qtbot.waitUntil(lambda: view.table.rowCount() == 3, timeout=JOB_TIMEOUT_MS)
    wait_idle(qtbot, window.session)
    problems_col = view.table.columnCount() - 1
    problems = [view.table.item(row, problems_col).text() for row in range(3)]
    assert problems[0] == "" and problems[2] == ""
    assert "target_new" in problems[1]
    assert view.table.item(1, 0).text() == "3"  # line 3 of the file (the header is line 1)
    assert view.table.item(1, 1).background().color().name() != view.table.item(0, 1).background().color().name()
    assert view.import_button.text() == "Import 2 valid rows"

    view.import_valid()
    qtbot.waitUntil(lambda: window.queue_view.table.rowCount() == 2, timeout=JOB_TIMEOUT_MS)
    wait_idle(qtbot, window.session)
    assert "Imported 2 facts" in view.summary.text()

    rejected = tmp_path / "rejected.csv"
    assert view.export_button.isEnabled()
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(rejected), ""))
    view.export_button.click()
    qtbot.waitUntil(rejected.exists, timeout=JOB_TIMEOUT_MS)
    wait_idle(qtbot, window.session)
    rows = list(csv.DictReader(open(rejected, encoding="utf-8-sig")))
    assert [r["subject"] for r in rows] == ["Greece"]
    assert rows[0]["line"] == "3"
    assert not error_dialogs()


def test_chat_round_trip_streams_tokens(qtbot, window, tiny_model_dir):
    load(qtbot, window, str(tiny_model_dir))
    chat = window.chat_view
    window.tabs.setCurrentWidget(chat)
    chat.max_tokens.setValue(8)
    pieces: list[str] = []
    original = chat._on_piece
    chat._on_piece = lambda value: (pieces.append(value[1]), original(value))  # type: ignore[method-assign]
    chat.input.setText("The capital of France is")
    chat.send_button.click()
    assert chat.streaming and chat.stop_button.isEnabled()
    qtbot.waitUntil(lambda: not chat.streaming, timeout=JOB_TIMEOUT_MS)
    wait_idle(qtbot, window.session)
    assert len(pieces) >= 2, pieces
    assert chat.answers["edited"] == "".join(pieces)
    text = chat.panes["edited"].toPlainText()
    assert "The capital of France is" in text and chat.answers["edited"] in text
    assert not error_dialogs()
