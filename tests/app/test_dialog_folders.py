"""Every file dialog opens in the folder it was last used in, else in the home folder (the project
dialogs: where projects are kept). Qt's static dialogs are modal native windows that cannot run
offscreen, so each is replaced by a stand-in that records the folder it was asked to open in and
answers as a user would; what the view does with the answer (load, preview, save) is not run."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QFileDialog

from nse_engine.paths import data_dir

from nse_app.views.new_project_dialog import NewProjectDialog

# (view, its method that asks, the dialog it uses, what it does with the answer, the file it suggests)
CASES = [
    ("model_view", "choose_folder", "getExistingDirectory", "load", None),
    ("model_view", "choose_gguf", "getOpenFileName", "load", None),
    ("model_view", "choose_project", "getExistingDirectory", "open_project", None),
    ("import_view", "choose_file", "getOpenFileName", "preview", None),
    ("import_view", "export_rejected", "getSaveFileName", "save_rejected_to", "facts-rejected.csv"),
    ("retention_view", "browse_overlay", "getExistingDirectory", "overlay_from", None),
    ("retention_view", "save_png", "getSaveFileName", "save_to", "retention.png"),
    ("retention_view", "browse_run", "getOpenFileName", "load_run", None),
]


@pytest.fixture
def dialogs(monkeypatch, tmp_path):
    """Stand-ins for the static dialogs: they record the `dir` asked for and pick something in `picked/`."""
    picked = tmp_path / "picked"
    (picked / "chosen").mkdir(parents=True)
    asked: list[str] = []

    def folder(_parent, _caption, start, *_args, **_kwargs):
        asked.append(start)
        return str(picked / "chosen")

    def file(_parent, _caption, start, filters="", *_args, **_kwargs):
        asked.append(start)
        return str(picked / "file.txt"), filters

    monkeypatch.setattr(QFileDialog, "getExistingDirectory", folder)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", file)
    monkeypatch.setattr(QFileDialog, "getSaveFileName", file)
    return picked, asked


@pytest.mark.parametrize(("view_name", "method", "_dialog", "action", "suggested"), CASES)
def test_each_dialog_opens_where_it_was_last_used(window, dialogs, monkeypatch, view_name, method, _dialog,
                                                 action, suggested):
    picked, asked = dialogs
    view = getattr(window, view_name)
    monkeypatch.setattr(view, action, lambda *_args: None)
    if view_name == "import_view":
        view._rejected = [object()]  # rows to save; no file previewed, so the home folder is offered
    getattr(view, method)()
    getattr(view, method)()
    first, second = (Path(a) for a in asked)
    expected_first = data_dir() if method == "choose_project" else Path.home()
    if suggested:
        assert (first, second) == (expected_first / suggested, picked / suggested)
    else:
        assert (first, second) == (expected_first, picked)


def test_the_new_project_folder_picker_opens_where_it_was_last_used(qtbot, window, dialogs):
    picked, asked = dialogs
    for _ in range(2):
        dialog = NewProjectDialog(str(data_dir()), window)
        qtbot.addWidget(dialog)
        dialog._browse()
        assert dialog.folder.text() == str(picked / "chosen")
    assert [Path(a) for a in asked] == [data_dir(), picked]


def test_a_remembered_folder_that_is_gone_is_skipped(window, dialogs, monkeypatch):
    picked, asked = dialogs
    monkeypatch.setattr(window.retention_view, "overlay_from", lambda *_args: None)
    window.retention_view.browse_overlay()
    (picked / "chosen").rmdir()
    picked.rmdir()
    window.retention_view.browse_overlay()
    assert [Path(a) for a in asked] == [Path.home(), Path.home()]
