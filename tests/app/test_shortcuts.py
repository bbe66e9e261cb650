"""Desktop conventions: Ctrl+1…7 switch screens, Delete removes the selected queued facts,
F1 opens the documentation and Help ▸ About names the app's and the model's licences."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from app.conftest import queue_fact, wait_idle
from nse_app.views.about import about_html, documentation_file


def test_ctrl_number_switches_to_that_screen(qtbot, window):
    window.activateWindow()
    for index in reversed(range(window.tabs.count())):
        qtbot.keyClick(window, Qt.Key(Qt.Key.Key_1 + index), Qt.KeyboardModifier.ControlModifier)
        assert window.tabs.currentIndex() == index, window.tabs.tabText(index)


def test_delete_removes_the_selected_queued_facts(qtbot, project_window):
    window = project_window
    queue_fact(qtbot, window)
    queue = window.queue_view
    qtbot.waitUntil(lambda: queue.table.rowCount() == 1)
    window.tabs.setCurrentWidget(queue)
    queue.table.selectRow(0)
    queue.table.setFocus()
    qtbot.keyClick(queue.table, Qt.Key.Key_Delete)
    wait_idle(qtbot, window.session)
    qtbot.waitUntil(lambda: queue.table.rowCount() == 0)


def test_about_names_the_version_and_both_licences(qtbot, project_window, monkeypatch):
    window = project_window
    text = about_html(window.session.model_info)
    assert "NSE Studio" in text and "MIT" in text and window.session.model_info.name in text
    assert "licence" in text.split("Model:")[1]
    shown = []
    monkeypatch.setattr(QMessageBox, "about", lambda _parent, title, body: shown.append((title, body)))
    window.findChild(type(window.run_action), "about").trigger()
    assert shown == [("About NSE Studio", text)]


def test_builtin_model_licence_and_the_documentation_file():
    from nse_engine.model.builtin_models import BUILTIN_MODELS
    from nse_engine.model.summary import ModelSummary

    summary = ModelSummary("SmolLM2-135M-Instruct", "default", "LlamaForCausalLM", "llama", 30, 1, "float32", "cpu",
                           "model.layers.<i>.mlp.down_proj", 1536, 576, ())
    assert BUILTIN_MODELS["default"].licence in about_html(summary)
    readme = documentation_file()
    assert readme is not None and readme.name == "README.md"


def test_f1_opens_the_documentation_in_the_desktops_viewer(qtbot, window):
    from PySide6.QtCore import QObject, Slot
    from PySide6.QtGui import QDesktopServices

    class Viewer(QObject):  # stands in for the desktop's file viewer through Qt's own URL-handler hook
        def __init__(self) -> None:
            super().__init__()
            self.opened: list[str] = []

        @Slot("QUrl")
        def show(self, url) -> None:
            self.opened.append(url.toLocalFile())

    viewer = Viewer()
    QDesktopServices.setUrlHandler("file", viewer, "show")
    try:
        window.activateWindow()
        qtbot.keyClick(window, Qt.Key.Key_F1)
    finally:
        QDesktopServices.unsetUrlHandler("file")
    assert viewer.opened == [str(documentation_file())]
