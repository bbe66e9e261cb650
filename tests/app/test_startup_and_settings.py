"""The command line's --model/--project start-up, and window state kept in QSettings."""

from __future__ import annotations

from PySide6.QtCore import QSettings

from app.conftest import JOB_TIMEOUT_MS, error_dialogs, wait_idle
from nse_app.main import parse_args, startup
from nse_app.main_window import MainWindow
from nse_app.session import Session


def test_command_line_loads_the_model_then_opens_the_project(qtbot, window, tiny_model_dir, tmp_path):
    args, _qt = parse_args(["--model", str(tiny_model_dir), "--project", str(tmp_path / "p")])
    with qtbot.waitSignal(window.session.project_changed, timeout=JOB_TIMEOUT_MS):
        window.session.start(startup(window, args.model, args.project))
    wait_idle(qtbot, window.session)
    assert window.windowTitle() == "NSE Studio — p — tiny-gpt2"
    assert window.model_view.info_labels["edit_layers"].text() != "—"
    assert not error_dialogs()


def test_window_state_is_kept(qtbot, window, loop):
    window.tabs.setCurrentIndex(4)
    window.close()
    assert QSettings().value("window/tab") in (4, "4")
    assert QSettings().value("window/geometry") is not None
    again = MainWindow(Session())
    qtbot.addWidget(again)
    assert again.tabs.currentIndex() == 4
    again.close()
