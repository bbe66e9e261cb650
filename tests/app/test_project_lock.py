"""The app keeps the engine's guarantees: one writer per project (a second window or process is
refused with a clear message), and a damaged state or a full disk is a dialog saying what to do."""

from __future__ import annotations

import subprocess
import sys

from PySide6.QtCore import Qt

from nse_app.main_window import MainWindow
from nse_app.session import Session

from app.conftest import error_dialogs, load, open_project, queue_fact, wait_idle
from reliability.faults import nse_env, overwrite, safetensors_data_offset, small_disk

HOLD_PROJECT = """
import sys, time
from nse_engine.store import Project
project = Project.open(sys.argv[1])
print("HELD", flush=True)
sys.stdin.readline()
"""


def _second_window(qtbot) -> MainWindow:
    window = MainWindow(Session())
    qtbot.addWidget(window)
    window.show()
    return window


DIALOG_TIMEOUT_MS = 120_000


def _dialog_text(qtbot) -> str:
    qtbot.waitUntil(lambda: bool(error_dialogs()), timeout=DIALOG_TIMEOUT_MS)
    (dialog,) = error_dialogs()
    text = dialog.text()
    dialog.close()
    return text


def _run_batch(qtbot, window: MainWindow) -> None:
    queue_fact(qtbot, window)
    window.queue_view.batch_size.setValue(1)
    qtbot.keyClick(window, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)


def test_a_second_window_on_the_same_project_is_refused(qtbot, project_window, tiny_model_dir, tmp_path):
    other = _second_window(qtbot)
    load(qtbot, other, str(tiny_model_dir))
    other.model_view.open_project(str(tmp_path / "project"))
    text = _dialog_text(qtbot)
    assert "already open in this process" in text and "another window" in text
    wait_idle(qtbot, other.session)
    assert other.session.project_info is None and project_window.session.project_info is not None


def test_a_project_open_in_another_process_is_refused(qtbot, window, tiny_model_dir, tmp_path):
    load(qtbot, window, str(tiny_model_dir))
    open_project(qtbot, window, tmp_path / "project")
    window.close()  # closing the window lets go of the project

    holder = subprocess.Popen([sys.executable, "-c", HOLD_PROJECT, str(tmp_path / "project")], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=nse_env())
    try:
        assert holder.stdout.readline().strip() == "HELD"
        other = _second_window(qtbot)
        load(qtbot, other, str(tiny_model_dir))
        other.model_view.open_project(str(tmp_path / "project"))
        assert f"pid {holder.pid}" in _dialog_text(qtbot)
    finally:
        holder.communicate("\n", timeout=30)


def test_a_damaged_state_is_a_dialog_that_says_what_to_run(qtbot, project_window, tiny_model_dir, tmp_path):
    _run_batch(qtbot, project_window)
    wait_idle(qtbot, project_window.session)
    assert not error_dialogs()
    project_window.close()
    state = tmp_path / "project" / "state" / "state-000001.safetensors"
    overwrite(state, safetensors_data_offset(state), b"\xff" * 64)

    other = _second_window(qtbot)
    load(qtbot, other, str(tiny_model_dir))
    other.model_view.open_project(str(tmp_path / "project"))
    text = _dialog_text(qtbot)
    assert "state-000001.safetensors is damaged" in text
    assert f"nse rollback --project {tmp_path / 'project'}" in text and "Traceback" not in text


def test_a_full_disk_during_a_batch_is_a_dialog_that_says_what_to_do(qtbot, window, tiny_model_dir, tmp_path):
    with small_disk(tmp_path / "disk", "4m") as disk:
        load(qtbot, window, str(tiny_model_dir))
        open_project(qtbot, window, disk.path / "project")
        queue_fact(qtbot, window)
        filler = disk.fill(leave_free=2048)
        window.queue_view.batch_size.setValue(1)
        qtbot.keyClick(window, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
        text = _dialog_text(qtbot)
        wait_idle(qtbot, window.session)
        assert "full" in text and "free" in text and "unchanged" in text
        assert window.queue_view.table.rowCount() == 1
        filler.unlink()
        window.close()

