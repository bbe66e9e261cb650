"""Ctrl+Q while a batch runs asks first (issue 34 item 9): "Keep running" lets the batch finish,
"Quit and cancel" closes the window."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from app.conftest import JOB_TIMEOUT_MS, queue_fact, wait_idle


def _answer_quit_dialog(button_text: str, seen: list[str]) -> QTimer:
    """Click a button of the quit dialog as soon as it is shown (it runs its own event loop);
    the caller keeps the returned timer alive."""
    def click() -> None:
        boxes = [w for w in QApplication.topLevelWidgets()
                 if isinstance(w, QMessageBox) and w.objectName() == "quitDialog" and w.isVisible()]
        if not boxes:
            return
        timer.stop()
        seen.append(boxes[0].text())
        (button,) = [b for b in boxes[0].buttons() if b.text() == button_text]
        button.click()

    timer = QTimer(interval=50)
    timer.timeout.connect(click)
    timer.start()
    return timer


def test_ctrl_q_during_a_batch_asks_before_cancelling_it(qtbot, project_window):
    window = project_window
    session = window.session
    queue_fact(qtbot, window)
    with qtbot.waitSignal(session.progress, timeout=JOB_TIMEOUT_MS):
        window.queue_view.run_queue()
    assert session.busy

    seen: list[str] = []
    answer = _answer_quit_dialog("Keep running", seen)
    qtbot.keyClick(window, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)
    assert seen and "cancels it" in seen[0]
    assert window.isVisible()
    wait_idle(qtbot, session)
    qtbot.waitUntil(lambda: window.queue_view.table.rowCount() == 0)  # the batch ran to its end, not cancelled

    queue_fact(qtbot, window)
    with qtbot.waitSignal(session.progress, timeout=JOB_TIMEOUT_MS):
        window.queue_view.run_queue()
    assert session.busy
    seen.clear()
    answer = _answer_quit_dialog("Quit and cancel", seen)
    window.activateWindow()  # back from the dialog
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    qtbot.keyClick(window, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)
    assert seen and not window.isVisible()
    answer.stop()


def test_ctrl_q_when_idle_quits_without_asking(qtbot, window):
    qtbot.keyClick(window, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)
    assert not window.isVisible()


def test_the_quit_question_names_what_an_export_loses(qtbot, project_window, tmp_path):
    """Quitting during an export is not called 'a batch of edits is not applied'."""
    window = project_window
    session = window.session
    seen: list[str] = []
    answer = _answer_quit_dialog("Keep running", seen)

    def quit_as_it_starts(busy: bool) -> None:
        if busy and not seen:
            window.close()  # what Ctrl+Q does; the question is worded while the export runs

    session.busy_changed.connect(quit_as_it_starts)
    target = tmp_path / "exported"
    session.start(session.export_model(str(target), allow_unedited=True))
    qtbot.waitUntil(lambda: bool(seen), timeout=JOB_TIMEOUT_MS)
    wait_idle(qtbot, session)
    session.busy_changed.disconnect(quit_as_it_starts)
    answer.stop()
    assert "nothing is exported" in seen[0] and "batch" not in seen[0]
    assert window.isVisible() and (target / "config.json").is_file()  # kept running to its end
