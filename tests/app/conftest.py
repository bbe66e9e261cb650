"""Fixtures for the app tests: the real main window on a qasync loop, a tiny real model, and
QSettings in a temporary folder."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from PySide6.QtCore import QEvent, QSettings, Qt
from PySide6.QtWidgets import QAbstractSpinBox, QApplication, QCheckBox, QDoubleSpinBox, QMessageBox, QWidget
from qasync import QEventLoop

from tiny import CHAT_TEMPLATE, save_model

from nse_app.main import configure_application
from nse_app.main_window import MainWindow
from nse_app.session import Session

JOB_TIMEOUT_MS = 600_000  # the first project derives the tiny model's settings; slow on a busy machine


@pytest.fixture(scope="session")
def tiny_chat_model(tmp_path_factory) -> Path:
    """The tiny model with a chat template, for chat verdicts and compare mode."""
    from transformers import AutoTokenizer

    folder = save_model("gpt2", tmp_path_factory.mktemp("models") / "tiny-chat")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(autouse=True)
def _settings_in_tmp(tmp_path, qapp, shared_cache):
    """Window state and recent projects go to a temporary ini file, never the user's settings.

    The statistics and derived NSE settings of the tiny model are cached once for all app tests
    (they are the same model each time); everything else stays per test.
    """
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "settings"))
    configure_application(qapp)
    yield
    # pyqtgraph's plot and view-box menus have no parent and outlive their window (about 40
    # widgets a window); left alone they pile up, and each later test's setStyleSheet above restyles
    # them all: the 100th app test's setup took 3-9 s instead of 0.1 s
    for widget in QApplication.topLevelWidgets():
        widget.deleteLater()
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


@pytest.fixture
def loop(qapp):
    """An asyncio loop driven by Qt's: whatever spins Qt events (qtbot.wait*) runs the tasks."""
    event_loop = QEventLoop(qapp, already_running=True)
    asyncio.set_event_loop(event_loop)
    yield event_loop
    asyncio.events._set_running_loop(None)
    asyncio.set_event_loop(None)


@pytest.fixture
def window(qtbot, loop):
    session = Session()
    win = MainWindow(session)
    qtbot.addWidget(win)
    win.show()
    yield win
    win.close()


def error_dialogs() -> list[QMessageBox]:
    return [w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox) and w.objectName() == "errorDialog" and w.isVisible()]


def wait_idle(qtbot, session: Session, timeout: int = JOB_TIMEOUT_MS) -> None:
    """Wait until the worker has no job left and the UI tasks that awaited them are done."""
    qtbot.waitUntil(lambda: not session.worker.busy and not session._tasks, timeout=timeout)


def set_setting(queue, key: str, value: str) -> None:
    """Set the Advanced panel's editor of `key` as a user would: tick a switch, enter a number."""
    editor = queue.findChild(QWidget, f"setting_{key}")
    if isinstance(editor, QCheckBox):
        editor.setChecked(value.strip().lower() in ("true", "on", "yes", "1"))
    elif isinstance(editor, QDoubleSpinBox):
        editor.setValue(float(value))
    else:
        editor.setValue(int(value))
    if isinstance(editor, QAbstractSpinBox):
        editor.editingFinished.emit()


def load(qtbot, window: MainWindow, source: str) -> None:
    with qtbot.waitSignal(window.session.model_changed, timeout=JOB_TIMEOUT_MS):
        window.model_view.load(source)
    wait_idle(qtbot, window.session)


def open_project(qtbot, window: MainWindow, folder: Path) -> None:
    with qtbot.waitSignal(window.session.project_changed, timeout=JOB_TIMEOUT_MS):
        window.model_view.open_project(str(folder))
    wait_idle(qtbot, window.session)


@pytest.fixture
def project_window(qtbot, window, tiny_model_dir, tmp_path):
    """The main window with the tiny model loaded and a new project open."""
    load(qtbot, window, str(tiny_model_dir))
    open_project(qtbot, window, tmp_path / "project")
    return window


FACT = {
    "subject": "Danielle Darrieux",
    "prompt": "The mother tongue of {} is",
    "target_new": "English",
    "target_true": "French",
}


def queue_fact(qtbot, window: MainWindow, fact: dict[str, str] = FACT) -> None:
    """Type a fact into the Edit form and add it to the queue, as a user would."""
    form = window.edit_form
    window.tabs.setCurrentWidget(form)
    form.clear()
    qtbot.keyClicks(form.subject, fact["subject"])
    qtbot.keyClicks(form.prompt, fact["prompt"])
    qtbot.keyClicks(form.target_new, fact["target_new"])
    qtbot.keyClicks(form.target_true, fact.get("target_true", ""))
    assert form.add_button.isEnabled(), form.problems_label.text()
    with qtbot.waitSignal(form.queued, timeout=JOB_TIMEOUT_MS):
        qtbot.mouseClick(form.add_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, window.session)
