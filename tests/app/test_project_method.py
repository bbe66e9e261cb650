"""A project's editing method on a tiny real model: created through the New project dialog as
AlphaEdit with ENCORE, a round applied, the window closed; a new window reopens the project with
its method and switch restored and shown on the Model screen, and undo works."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialogButtonBox, QMessageBox

from nse_engine.store.database import LOG_FILE

from nse_app.main_window import MainWindow
from nse_app.session import Session
from nse_app.views.new_project_dialog import NewProjectDialog

from app.conftest import JOB_TIMEOUT_MS, error_dialogs, load, open_project, queue_fact, set_setting, wait_idle
from app.test_edit_flow import type_strong_settings


def _statuses(window: MainWindow) -> list[str]:
    table = window.log_view.facts_table
    return [table.item(row, 5).text() for row in range(table.rowCount())]


def test_the_new_project_dialog_checks_the_folder_and_opens_an_existing_project_as_it_is(qtbot, tmp_path):
    dialog = NewProjectDialog(str(tmp_path))
    qtbot.addWidget(dialog)
    ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / LOG_FILE).write_bytes(b"")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("x")
    for name, enabled, note in (("new", True, ""), ("missing/new", False, "does not exist"),
                                ("full", False, "not empty"), ("old", True, "holds a project already")):
        dialog.folder.setText(str(tmp_path / name))
        assert (ok.isEnabled(), note in dialog.folder_note.text()) == (enabled, True), name
    dialog.method_buttons["alphaedit"].click()
    dialog.switch_boxes["encore"].click()
    assert not dialog.methods.isEnabled() and ok.text() == "Open project"
    assert (dialog.choice().method, dialog.choice().settings) == (None, None)  # the project keeps its own


def test_an_alphaedit_project_is_created_edited_reopened_and_undone(qtbot, window, tiny_model_dir, tmp_path, monkeypatch):
    folder = tmp_path / "alphaedit-run"
    load(qtbot, window, str(tiny_model_dir))
    qtbot.keyClick(window, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
    dialog = window.model_view.new_project_dialog
    assert dialog is not None and dialog.isVisible()
    assert dialog.method_buttons["nse"].isChecked() and not any(b.isChecked() for b in dialog.switch_boxes.values())
    qtbot.keyClicks(dialog.folder, str(folder))
    dialog.method_buttons["alphaedit"].click()
    dialog.switch_boxes["encore"].click()
    with qtbot.waitSignal(window.session.project_changed, timeout=JOB_TIMEOUT_MS):
        dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    wait_idle(qtbot, window.session)
    assert not error_dialogs()
    assert window.model_view.method_label.text() == "Method: AlphaEdit + ENCORE"

    queue_fact(qtbot, window)
    type_strong_settings(window.queue_view)
    set_setting(window.queue_view, "verify_passes", "1")  # the round checks what it writes
    with qtbot.waitSignal(window.session.changed, timeout=JOB_TIMEOUT_MS) as changed:
        window.queue_view.run_queue()
    wait_idle(qtbot, window.session)
    assert changed.args[0].applied_fact_ids, changed.args[0].failed
    assert changed.args[0].batch.method == "AlphaEdit"
    (point,) = window.retention_view.series
    assert point.says_new in (0.0, 1.0)  # its one fact was checked
    xs, _ys = window.retention_view.retention.lines.curves["says_new"][0].getData()
    assert list(xs) == [1.0]
    window.close()

    reopened = MainWindow(Session())
    qtbot.addWidget(reopened)
    reopened.show()
    load(qtbot, reopened, str(tiny_model_dir))
    open_project(qtbot, reopened, folder)
    assert not error_dialogs()
    info = reopened.session.project_info
    assert (info.method, info.switches) == ("alphaedit", {"norm_anchoring": False, "encore": True})
    assert reopened.model_view.method_label.text() == "Method: AlphaEdit + ENCORE"
    qtbot.waitUntil(lambda: _statuses(reopened) == ["applied"])

    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    with qtbot.waitSignal(reopened.session.changed, timeout=JOB_TIMEOUT_MS) as undone:
        reopened.undo_action.trigger()
    wait_idle(qtbot, reopened.session)
    assert undone.args[0].undone
    qtbot.waitUntil(lambda: _statuses(reopened) == ["undone"])
    assert reopened.retention_view.point_count == 0
    assert not error_dialogs()
    reopened.close()
