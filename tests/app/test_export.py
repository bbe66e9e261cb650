"""File ▸ Export in the real window: it asks before exporting a model with no edit or replacing a
non-empty folder, refuses the base model's folder, and its picker takes a new folder's name."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLineEdit, QMessageBox

from app.conftest import JOB_TIMEOUT_MS, error_dialogs, wait_idle

from nse_app import main_window
from nse_app.views.export_dialog import LAST_EXPORT_KEY, ExportFolderDialog, remember_export_folder, start_folder


class Questions:
    """Stands in for QMessageBox.question: records each question, answers by its title."""

    def __init__(self, answers: dict[str, bool]) -> None:
        self.answers = answers
        self.asked: list[tuple[str, str]] = []

    def __call__(self, parent, title, text, *args, **kwargs):
        self.asked.append((title, text))
        yes = next(answer for key, answer in self.answers.items() if key in title)
        return QMessageBox.StandardButton.Yes if yes else QMessageBox.StandardButton.No


def _export(qtbot, window, monkeypatch, folder: Path, questions: Questions) -> None:
    monkeypatch.setattr(main_window, "choose_export_folder", lambda parent=None: str(folder))
    monkeypatch.setattr(QMessageBox, "question", questions)
    window.export_action.trigger()
    qtbot.wait(50)
    wait_idle(qtbot, window.session)


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def test_exporting_with_nothing_edited_asks_first(qtbot, project_window, monkeypatch, tmp_path):
    window = project_window
    out = tmp_path / "exported"
    declined = Questions({"base model": False})
    _export(qtbot, window, monkeypatch, out, declined)
    ((title, text),) = declined.asked
    assert "Nothing is edited" in text and "unchanged" in text
    assert not out.exists()

    accepted = Questions({"base model": True})
    _export(qtbot, window, monkeypatch, out, accepted)
    assert len(accepted.asked) == 1 and not error_dialogs()
    assert json.loads((out / "edits.json").read_text(encoding="utf-8"))["edits"] == []
    assert (out / "config.json").exists() and "unchanged" in (out / "README.md").read_text(encoding="utf-8")
    assert QSettings().value(LAST_EXPORT_KEY) == str(out)


def test_a_non_empty_folder_is_replaced_only_when_confirmed(qtbot, project_window, monkeypatch, tmp_path):
    window = project_window
    folder = tmp_path / "old-export"
    folder.mkdir()
    (folder / "model-00001-of-00002.safetensors").write_bytes(b"old shard")
    (folder / "model.safetensors.index.json").write_text("{}")
    declined = Questions({"base model": True, "Replace": False})
    _export(qtbot, window, monkeypatch, folder, declined)
    replace_text = declined.asked[-1][1]
    assert "model-00001-of-00002.safetensors" in replace_text and "model.safetensors.index.json" in replace_text
    assert sorted(p.name for p in folder.iterdir()) == ["model-00001-of-00002.safetensors",
                                                        "model.safetensors.index.json"]

    _export(qtbot, window, monkeypatch, folder, Questions({"base model": True, "Replace": True}))
    names = {p.name for p in folder.iterdir()}
    assert {"config.json", "model.safetensors", "edits.json", "README.md"} <= names
    assert not names & {"model-00001-of-00002.safetensors", "model.safetensors.index.json"}
    assert not error_dialogs()


def test_the_base_model_folder_is_refused_with_a_plain_message(qtbot, project_window, monkeypatch, tiny_model_dir):
    window = project_window
    before = _digest(tiny_model_dir)
    questions = Questions({"": True})
    _export(qtbot, window, monkeypatch, tiny_model_dir, questions)
    qtbot.waitUntil(lambda: bool(error_dialogs()))
    (dialog,) = error_dialogs()
    assert dialog.windowTitle() == "Cannot do that" and "the base model" in dialog.text()
    assert not questions.asked  # refused before anything is asked
    assert _digest(tiny_model_dir) == before
    dialog.close()


def test_the_picker_takes_a_new_folder_name_and_starts_beside_the_last_export(qtbot, tmp_path):
    assert start_folder() == str(Path.home())
    remember_export_folder(str(tmp_path / "exports" / "first"))
    (tmp_path / "exports").mkdir()
    assert start_folder() == str(tmp_path / "exports")

    dialog = ExportFolderDialog(start_folder())
    qtbot.addWidget(dialog)
    dialog.open()
    name = dialog.findChild(QLineEdit, "fileNameEdit")
    qtbot.keyClicks(name, "second")
    export = dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Save)
    assert export.isEnabled() and export.text() == "Export"
    qtbot.mouseClick(export, Qt.MouseButton.LeftButton)
    assert dialog.result() == QDialog.DialogCode.Accepted
    assert dialog.chosen == str(tmp_path / "exports" / "second")
    assert not (tmp_path / "exports" / "second").exists()  # the export makes it, not the picker
