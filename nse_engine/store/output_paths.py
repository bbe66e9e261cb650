"""Where a file the user asked for (an export, an errors file, a chart) may be written.

Refused before any work is done: a folder, a missing or read-only folder, the file being read
(`inputs`), and any file a project keeps its log, editing states or lock in. The project folders
to protect are those named in `projects` and any folder holding a project log above the path, so a
project that is about to be created is protected as well as one that exists. Paths are compared
resolved, symlinks followed, so a link to a project's log is refused like the log itself. The
CLI and the app's save dialogs all check here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from nse_engine.errors import OutputFileError
from nse_engine.paths import PROJECT_LOG_FILE, PROJECT_STATE_DIR
from nse_engine.store.project_lock import LOCK_FILE

__all__ = ["check_output_path"]

_LOG_FILES = {PROJECT_LOG_FILE + ending for ending in ("", "-wal", "-shm", "-journal")}


def check_output_path(path: Path, inputs: Iterable[Path] = (), projects: Iterable[Path] = ()) -> None:
    """Raise `OutputFileError`, naming `path` and why, when it must not or cannot be written."""
    path = Path(path)
    target = _resolved(path)
    for source in inputs:
        if _same_file(target, Path(source)):
            raise OutputFileError(f"cannot write {path}: it is the file being read ({source}); name another file")
    project_folders = {_resolved(Path(folder)) for folder in projects}
    for folder in target.parents:
        if folder in project_folders or (folder / PROJECT_LOG_FILE).exists():
            what = _managed(target.relative_to(folder))
            if what is not None:
                raise OutputFileError(f"cannot write {path}: it is {what} of the project in {folder}, and writing "
                                      "it would destroy the project; name a file outside the project's own files")
    if path.is_dir():
        raise OutputFileError(f"cannot write {path}: it is a folder; name a file in it")
    if not path.parent.is_dir():
        raise OutputFileError(f"cannot write {path}: the folder {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK) or _read_only_media(path.parent):
        raise OutputFileError(f"cannot write {path}: the folder {path.parent} is read-only")


def _managed(relative: Path) -> str | None:
    """What a path inside a project folder is to the project (None: not one of its files)."""
    first = relative.parts[0]
    if first == PROJECT_STATE_DIR:
        return "the editing-state folder" if len(relative.parts) == 1 else "a file in the editing-state folder"
    if len(relative.parts) > 1:
        return None
    if first in _LOG_FILES or first.startswith(f".{PROJECT_LOG_FILE}.tmp-"):
        return "the edit log"
    if first.startswith(LOCK_FILE):
        return "the lock file"
    return None


def _resolved(path: Path) -> Path:
    """The absolute path with every symlink followed (also for a name that does not exist yet)."""
    return Path(os.path.realpath(path))


def _same_file(target: Path, source: Path) -> bool:
    if target == _resolved(source):
        return True
    try:
        return os.path.samefile(target, source)  # hard links
    except OSError:
        return False


def _read_only_media(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (AttributeError, OSError):
        return False
