"""File dialogs that open where the user last was: each dialog keeps the folder it was last
used in under its own QSettings key (`dialogs/<name>`), else it opens in a folder its caller
names (a project's, the imported file's) or in the home folder. A remembered folder that is
gone is skipped. File ▸ Export has its own picker (export_dialog.py) and keeps its folder the
same way."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QFileDialog, QWidget


def _key(name: str) -> str:
    return f"dialogs/{name}"


def start_folder(name: str, fallback: str | Path | None = None) -> str:
    """Where dialog `name` opens: its last folder, else `fallback`, else the home folder."""
    for folder in (QSettings().value(_key(name), ""), fallback):
        if folder and Path(str(folder)).is_dir():
            return str(folder)
    return str(Path.home())


def remember(name: str, folder: str | Path) -> None:
    QSettings().setValue(_key(name), str(folder))


def choose_folder(parent: QWidget | None, caption: str, name: str, fallback: str | Path | None = None) -> str:
    """An existing folder ("" when cancelled); the next time the dialog opens in its parent,
    where the folder's siblings are."""
    folder = QFileDialog.getExistingDirectory(parent, caption, start_folder(name, fallback))
    if folder:
        remember(name, Path(folder).parent)
    return folder


def open_file(parent: QWidget | None, caption: str, name: str, filters: str) -> str:
    """A file to read ("" when cancelled); the dialog opens in that file's folder next time."""
    path, _ = QFileDialog.getOpenFileName(parent, caption, start_folder(name), filters)
    if path:
        remember(name, Path(path).parent)
    return path


def save_file(parent: QWidget | None, caption: str, name: str, file_name: str, filters: str,
              fallback: str | Path | None = None) -> str:
    """A file to write, offered as `file_name` in the dialog's folder ("" when cancelled)."""
    suggested = Path(start_folder(name, fallback)) / file_name
    path, _ = QFileDialog.getSaveFileName(parent, caption, str(suggested), filters)
    if path:
        remember(name, Path(path).parent)
    return path
