"""What a failed read or write of a project means to the user: a full disk, read-only media, a
damaged log (including a cell that no longer decodes), a busy file or a failing disk.

SQLite, the OS and safetensors report these as error codes and strings; `storage_errors()` turns
one into a `StorageError` that names the place and says what to do. Any other exception passes
through unchanged (it is a bug, not the environment).
"""

from __future__ import annotations

import errno
import functools
import json
import shutil
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

from nse_engine.errors import NseError, StorageError

_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_READ_ONLY_ERRNOS = {errno.EROFS, errno.EACCES, errno.EPERM}
_NEARLY_FULL_BYTES = 256 * 1024  # an I/O error with less free space than this is a full disk

# How SQLite's and safetensors' messages name each kind (they carry no errno).
_MESSAGES = {
    "full": ("database or disk is full", "no space left on device", "file too large", "disk quota exceeded"),
    "read-only": ("readonly database", "read-only file system", "permission denied"),
    "damaged": ("malformed", "file is not a database"),
    "busy": ("database is locked", "database is busy"),
    "failing": ("disk i/o error", "input/output error"),
    "unopenable": ("unable to open database file",),
}


def storage_kind(error: BaseException, folder: Path | None = None) -> str | None:
    """'full', 'read-only', 'damaged', 'busy', 'failing', 'unopenable', 'gone' (`folder` was moved or
    deleted while in use) or None (not a storage problem)."""
    kind = None
    if isinstance(error, (UnicodeDecodeError, json.JSONDecodeError)):  # a text or JSON cell read back garbled
        return "damaged"
    if folder is not None and _not_found(error) and not folder.exists():
        return "gone"
    if isinstance(error, OSError) and error.errno is not None:
        if error.errno in _FULL_ERRNOS:
            kind = "full"
        elif error.errno in _READ_ONLY_ERRNOS:
            kind = "read-only"
        elif error.errno == errno.EIO:
            kind = "failing"
    if kind is None and (isinstance(error, (sqlite3.DatabaseError, OSError)) or type(error).__name__ == "SafetensorError"):
        text = str(error).lower()
        kind = next((k for k, phrases in _MESSAGES.items() if any(p in text for p in phrases)), kind)
    if kind in ("failing", "unopenable") and folder is not None and _nearly_full(folder):
        kind = "full"
    return kind


def storage_error(error: BaseException, path: Path, action: str, outcome: str = "Nothing was changed") -> StorageError:
    """The user's message for `error`, met while trying to `action` on `path` (a file or a folder)."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    kind = storage_kind(error, folder) or "failing"
    detail = _detail(error)
    if kind == "full":
        text = f"the disk holding {folder} is full ({detail}). {outcome}; free some space and try again."
    elif kind == "read-only":
        text = f"{folder} is read-only ({detail}). {outcome}; copy the project to a writable disk to change it."
    elif kind == "damaged":
        text = (f"the project log {path} is damaged ({detail}). Put back the project folder from a backup; "
                f"`sqlite3 {path} .recover` can save what is still readable.")
    elif kind == "busy":
        text = f"{path} is busy in another program ({detail}). {outcome}; close that program and try again."
    elif kind == "gone":
        text = (f"{_highest_missing(folder)} was moved or deleted while in use ({detail}). {outcome}; "
                "put the folder back, or open the project where it is now, and try again.")
    elif kind == "unopenable":
        text = f"{path} cannot be opened ({detail}). Check that the folder exists and can be read."
    else:
        text = f"the disk reported an error with {path} ({detail}). {outcome}; check the disk and try again."
    return StorageError(f"could not {action}: {text}")


@contextmanager
def storage_errors(path: Path, action: str, outcome: str = "Nothing was changed") -> Iterator[None]:
    """Turn storage failures inside the block into a `StorageError`; let everything else through."""
    try:
        yield
    except NseError:
        raise
    except Exception as exc:  # noqa: BLE001 - only storage failures are translated, the rest re-raised
        folder = Path(path) if Path(path).is_dir() else Path(path).parent
        if storage_kind(exc, folder) is None:
            raise
        raise storage_error(exc, path, action, outcome) from exc


_Class = TypeVar("_Class", bound=type)


def guard_reads(path_of: Callable[[Any], Path]) -> Callable[[_Class], _Class]:
    """Class decorator: every public method's storage failures become a `StorageError` about the
    file `path_of(self)` names (for read-only query classes, whoever calls them)."""

    def decorate(cls: _Class) -> _Class:
        for name, method in list(vars(cls).items()):
            if callable(method) and not name.startswith("_"):
                setattr(cls, name, _guarded(method, path_of))
        return cls

    return decorate


def _guarded(method: Callable[..., Any], path_of: Callable[[Any], Path]) -> Callable[..., Any]:
    @functools.wraps(method)
    def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        with storage_errors(path_of(self), "read the project log"):
            return method(self, *args, **kwargs)

    return run


def _not_found(error: BaseException) -> bool:
    if isinstance(error, OSError) and error.errno == errno.ENOENT:
        return True
    return type(error).__name__ == "SafetensorError" and "no such file or directory" in str(error).lower()


def _highest_missing(folder: Path) -> Path:
    """The folder that went away: the highest one missing on the way up from `folder`."""
    while not folder.parent.exists() and folder.parent != folder:
        folder = folder.parent
    return folder


def _nearly_full(folder: Path) -> bool:
    try:
        return shutil.disk_usage(folder).free < _NEARLY_FULL_BYTES
    except OSError:
        return False


def _detail(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror.lower()
    text = str(error)
    marker = "I/O error: "
    return text.split(marker, 1)[1] if marker in text else text
