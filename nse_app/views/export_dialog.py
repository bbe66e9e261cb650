"""The folder picker of File ▸ Export: it takes the name of a folder that does not exist yet.

Qt's folder picker (getExistingDirectory) only returns folders that exist, so an export needed
an empty folder made beforehand. This picker is a save-style dialog showing folders only: a
typed name is taken as the export folder, new or existing (the main window then asks before
replacing a non-empty one), and double-clicking a folder opens it. It starts where the last
export went, else in the user's home folder.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QDir, QSettings
from PySide6.QtWidgets import QDialog, QFileDialog, QLineEdit, QWidget

LAST_EXPORT_KEY = "export/last_folder"


class ExportFolderDialog(QFileDialog):
    """Asks for the folder an export writes: a new name, or an existing folder typed by name."""

    def __init__(self, start: str, parent: QWidget | None = None) -> None:
        super().__init__(parent, "Export the edited model to a new or empty folder", start)
        self.setObjectName("exportFolderDialog")
        self.setOption(QFileDialog.Option.DontUseNativeDialog, True)  # native dialogs ignore `accept` below
        self.setOption(QFileDialog.Option.DontConfirmOverwrite, True)  # the main window asks, naming what is there
        self.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        self.setFileMode(QFileDialog.FileMode.AnyFile)
        self.setFilter(QDir.Filter.AllDirs | QDir.Filter.NoDotAndDotDot | QDir.Filter.Drives)
        self.setLabelText(QFileDialog.DialogLabel.FileName, "Folder name:")
        self.setLabelText(QFileDialog.DialogLabel.Accept, "Export")
        self.chosen: str | None = None

    def accept(self) -> None:
        """Take the typed name as the folder, existing or not (Qt would open an existing one)."""
        name = self.findChild(QLineEdit, "fileNameEdit")
        if name is not None and name.text().endswith(("/", os.sep)):  # "folder/": open it, as Qt does
            super().accept()
            return
        typed = self.selectedFiles()
        if typed and Path(typed[0]).parent.is_dir():
            self.chosen = typed[0]
            QDialog.accept(self)
            return
        super().accept()


def start_folder() -> str:
    """Where the picker opens: beside the last export, else the home folder."""
    last = QSettings().value(LAST_EXPORT_KEY, "")
    parent = Path(str(last)).parent if last else None
    return str(parent) if parent is not None and parent.is_dir() else str(Path.home())


def remember_export_folder(folder: str) -> None:
    QSettings().setValue(LAST_EXPORT_KEY, str(folder))


def choose_export_folder(parent: QWidget | None = None) -> str | None:
    """The folder the user named for an export, or None when cancelled."""
    dialog = ExportFolderDialog(start_folder(), parent)
    if dialog.exec() != QDialog.DialogCode.Accepted:
        return None
    return dialog.chosen
