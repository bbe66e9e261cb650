"""Diagnostics: a rotating log file in the user's data folder and the one default error path.

A user mistake (NseError, a bad setting among them) becomes a plain message box; anything else
is logged with its traceback and shown as "something went wrong, see the log", never as a
traceback dialog.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path
from types import TracebackType

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from nse_engine.errors import Cancelled, NseError, SettingsError
from nse_engine.paths import data_dir

log = logging.getLogger("nse_app")
_open_dialogs: set[QMessageBox] = set()


def log_file() -> Path:
    return data_dir() / "logs" / "nse-studio.log"


def setup_logging(verbose: bool = False) -> Path:
    """Log INFO and above to a rotating file (5 x 1 MB); with `verbose`, also to stderr."""
    path = log_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=1_000_000, backupCount=5, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    root.addHandler(handler)
    if verbose:
        root.addHandler(logging.StreamHandler())
    return path


def error_message(error: BaseException) -> tuple[str, str]:
    """(title, text) to show for `error`."""
    if isinstance(error, SettingsError):
        return "Invalid setting", str(error)
    if isinstance(error, NseError):
        return "Cannot do that", str(error)
    return (
        "Unexpected error",
        f"Something went wrong: {type(error).__name__}: {error}\n\n"
        f"Details are in the log file:\n{log_file()}",
    )


def show_error(error: BaseException, parent: QWidget | None = None) -> None:
    """The default failure path of every operation: log, then a message box (not for Cancelled)."""
    if isinstance(error, Cancelled):
        return
    if isinstance(error, NseError):
        log.info("user error: %s", error)
    else:
        log.error("unexpected error", exc_info=(type(error), error, error.__traceback__))
    title, text = error_message(error)
    if QApplication.instance() is None:
        return
    box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok, parent)
    box.setObjectName("errorDialog")
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    _open_dialogs.add(box)  # a parentless box would be deleted with its Python wrapper
    box.finished.connect(lambda _result: _open_dialogs.discard(box))
    box.open()


def install_excepthook() -> None:
    """Uncaught exceptions in slots and tasks are logged and shown, instead of killing the app."""

    def hook(kind: type[BaseException], error: BaseException, tb: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            sys.__excepthook__(kind, error, tb)
            return
        error.__traceback__ = tb
        show_error(error, QApplication.activeWindow())

    sys.excepthook = hook
