"""The main flow on a tiny real model: enter an edit, run it, see the log row and a chart
point; cancel a running batch and see nothing changed; compare with the original model."""

from __future__ import annotations

import json

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from app.conftest import FACT, JOB_TIMEOUT_MS, error_dialogs, queue_fact, set_setting, wait_idle

from nse_app import main_window


def _log_cell(window, row: int, header: str) -> str:
    table = window.log_view.facts_table
    column = next(c for c in range(table.columnCount()) if table.horizontalHeaderItem(c).text() == header)
    return table.item(row, column).text()


def _log_statuses(window) -> list[str]:
    table = window.log_view.facts_table
    return [table.item(row, 5).text() for row in range(table.rowCount())]


# The tiny random model's derived settings make edits too gentle to change its greedy text;
# these (set in the Advanced panel, as a user would) make a strong edit.
STRONG_EDIT = {"v_lr": "20", "v_num_grad_steps": "40", "clamp_norm_factor": "100", "kl_factor": "0",
               "upper_bound": "1000000", "neuron_threshold": "1.0", "mom2_update_weight": "1.0"}


def type_strong_settings(queue) -> None:
    queue.advanced.setChecked(True)
    for key, value in STRONG_EDIT.items():
        set_setting(queue, key, value)


def test_enter_an_edit_run_it_and_see_log_row_and_chart_point(qtbot, project_window):
    window = project_window
    queue_fact(qtbot, window)
    assert window.queue_view.table.rowCount() == 1
    assert window.queue_view.table.item(0, 1).text() == FACT["subject"]

    window.queue_view.batch_size.setValue(1)
    type_strong_settings(window.queue_view)
    with qtbot.waitSignal(window.session.changed, timeout=JOB_TIMEOUT_MS) as changed:
        qtbot.keyClick(window, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    wait_idle(qtbot, window.session)
    changes = changed.args[0]
    assert len(changes.applied_fact_ids) == 1 and not changes.failed, changes.failed
    assert not error_dialogs()
    assert changes.batch.hparams["v_lr"] == 20.0  # the value typed in the Advanced panel reached the round

    qtbot.waitUntil(lambda: window.queue_view.table.rowCount() == 0)
    qtbot.waitUntil(lambda: window.log_view.facts_table.rowCount() == 1)
    assert _log_statuses(window) == ["applied"]
    assert window.log_view.batches_table.rowCount() == 1
    assert _log_cell(window, 0, "P(new) before") and _log_cell(window, 0, "P(new) after its batch")
    (row,) = window.log_view._facts
    assert row.prob_new_after > row.prob_new_before  # the edit raised the new object's probability
    assert _log_cell(window, 0, "Retained") == "yes"
    qtbot.waitUntil(lambda: window.retention_view.point_count >= 1)
    assert window.retention_view.series[0].edits_applied == len(changes.applied_fact_ids)
    qtbot.waitUntil(lambda: window.retention_view.fluency_count >= 1, timeout=JOB_TIMEOUT_MS)


def test_cancel_a_running_batch_changes_nothing(qtbot, project_window):
    window = project_window
    session = window.session
    queue_fact(qtbot, window)
    with qtbot.waitSignal(session.progress, timeout=JOB_TIMEOUT_MS):
        window.queue_view.run_queue()
    assert session.busy
    qtbot.keyClick(window, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not session.busy, timeout=JOB_TIMEOUT_MS)
    wait_idle(qtbot, session)

    assert not error_dialogs()
    window.log_view.refresh()
    wait_idle(qtbot, session)
    assert _log_statuses(window) == ["queued"]
    assert window.log_view.batches_table.rowCount() == 0
    assert window.queue_view.table.rowCount() == 1
    assert window.retention_view.point_count == 0


def test_compare_mode_shows_two_different_answers_after_an_edit(qtbot, project_window):
    window = project_window
    queue_fact(qtbot, window)
    queue = window.queue_view
    type_strong_settings(queue)
    assert queue.overrides()["v_lr"] == "20"
    with qtbot.waitSignal(window.session.changed, timeout=JOB_TIMEOUT_MS) as changed:
        queue.run_queue()
    wait_idle(qtbot, window.session)
    assert changed.args[0].applied_fact_ids, changed.args[0].failed

    chat = window.chat_view
    window.tabs.setCurrentWidget(chat)
    chat.max_tokens.setValue(6)
    chat.compare.setChecked(True)
    assert chat.boxes["original"].isVisible()
    chat.send("The mother tongue of Danielle Darrieux is")
    qtbot.waitUntil(lambda: not chat.streaming, timeout=JOB_TIMEOUT_MS)
    edited, original = chat.answers["edited"], chat.answers["original"]
    assert edited and original
    assert edited != original
    assert edited in chat.panes["edited"].toPlainText()
    assert original in chat.panes["original"].toPlainText()


def test_undo_the_last_batch_and_export_the_model(qtbot, project_window, tmp_path, monkeypatch):
    window = project_window
    session = window.session
    queue_fact(qtbot, window)
    with qtbot.waitSignal(session.changed, timeout=JOB_TIMEOUT_MS):
        window.queue_view.run_queue()
    wait_idle(qtbot, session)

    export = tmp_path / "exported"
    monkeypatch.setattr(main_window, "choose_export_folder", lambda parent=None: str(export))
    window.export_action.trigger()
    qtbot.waitUntil(lambda: (export / "config.json").exists(), timeout=JOB_TIMEOUT_MS)
    wait_idle(qtbot, session)
    edits = json.loads((export / "edits.json").read_text(encoding="utf-8"))["edits"]
    assert [(e["subject"], e["target_new"]) for e in edits] == [(FACT["subject"], FACT["target_new"])]

    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    with qtbot.waitSignal(session.changed, timeout=JOB_TIMEOUT_MS) as undone:
        window.undo_action.trigger()
    wait_idle(qtbot, session)
    assert undone.args[0].undone
    qtbot.waitUntil(lambda: _log_statuses(window) == ["undone"])
    assert window.retention_view.point_count == 0
    assert not error_dialogs()


def test_a_bad_setting_is_refused_before_anything_is_edited(qtbot, project_window):
    window = project_window
    queue_fact(qtbot, window)
    queue = window.queue_view
    queue.advanced.setChecked(True)
    set_setting(queue, "alpha", "1e12")  # each editor takes it; together with upper_bound it is wrong
    queue.run_queue()
    qtbot.waitUntil(lambda: bool(error_dialogs()), timeout=JOB_TIMEOUT_MS)
    (dialog,) = error_dialogs()
    assert dialog.windowTitle() == "Invalid setting"
    assert dialog.text() == "alpha must be ≥ 0 and below upper_bound"
    dialog.close()
    wait_idle(qtbot, window.session)
    window.log_view.refresh()
    wait_idle(qtbot, window.session)
    assert _log_statuses(window) == ["queued"] and window.log_view.batches_table.rowCount() == 0
