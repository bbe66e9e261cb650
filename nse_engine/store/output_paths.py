"""Where a file the user asked for (an export, an errors file, a chart) may be written.

Refused before any work is done: a folder, a missing or read-only folder, the file being read
(`inputs`), and any file a project keeps its log, editing states or lock in. The project folders
to protect are those named in `projects` and any folder holding a project log above the path, so a
project that is about to be created is protected as well as one that exists. Paths are compared
both as typed and resolved (symlinks followed), so a link to a project's log is refused like the
log itself, and so is a project's own `state/` or log that is a link to somewhere else; names
are compared ignoring case (Windows and macOS disks). The CLI and the app's save dialogs all
check here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Iterator

from nse_engine.errors import OutputFileError
from nse_engine.paths import LOG_SIDE_FILES, PROJECT_LOG_FILE, PROJECT_STATE_DIR, is_log_leftover, resolved
from nse_engine.store.project_lock import LOCK_FILE

__all__ = ["check_output_path"]

_LOG_ENDINGS = ("", *LOG_SIDE_FILES)
_LOG_FILES = {(PROJECT_LOG_FILE + ending).casefold() for ending in _LOG_ENDINGS}


def check_output_path(path: Path, inputs: Iterable[Path] = (), projects: Iterable[Path] = ()) -> None:
    """Raise `OutputFileError`, naming `path` and why, when it must not or cannot be written."""
    path = Path(path)
    target = resolved(path)
    for source in inputs:
        if _same_file(target, Path(source)):
            raise OutputFileError(f"cannot write {path}: it is the file being read ({source}); name another file")
    hit = next(_project_files_hit(path, projects), None)
    if hit is not None:
        folder, what = hit
        raise OutputFileError(f"cannot write {path}: it is {what} of the project in {folder}, and writing "
                              "it would destroy the project; name a file outside the project's own files")
    if path.is_dir():
        raise OutputFileError(f"cannot write {path}: it is a folder; name a file in it")
    if not path.parent.is_dir():
        raise OutputFileError(f"cannot write {path}: the folder {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK) or _read_only_media(path.parent):
        raise OutputFileError(f"cannot write {path}: the folder {path.parent} is read-only")


def _project_files_hit(path: Path, projects: Iterable[Path]) -> Iterator[tuple[Path, str]]:
    """(project folder, what) for each project file `path` would write over.

    Both the path as typed and the path resolved are checked: a project whose `state/` or log is
    itself a link is reached through the link's name, or directly at the place it points to.
    """
    typed, target = Path(os.path.abspath(path)), resolved(path)
    given = {Path(os.path.abspath(folder)) for folder in projects}
    given |= {resolved(folder) for folder in given}
    folders: list[Path] = []
    for candidate in (typed, target):
        for folder in candidate.parents:
            if folder in given or (folder / PROJECT_LOG_FILE).exists():
                folders.append(folder)
                what = _managed(candidate.relative_to(folder))
                if what is not None:
                    yield folder, what
    for folder in dict.fromkeys([*given, *folders]):
        state = resolved(folder / PROJECT_STATE_DIR)
        if target == state or state in target.parents:
            yield folder, "the editing-state folder" if target == state else "a file in the editing-state folder"
        log_file = folder / PROJECT_LOG_FILE
        for ending in _LOG_ENDINGS:
            if _same_file(target, log_file.with_name(log_file.name + ending)):
                yield folder, "the edit log"


def _managed(relative: Path) -> str | None:
    """What a path inside a project folder is to the project (None: not one of its files).

    Names are compared case-insensitively: on the disks of Windows and macOS `Project.sqlite` or
    `STATE` is the project's own file.
    """
    first = relative.parts[0].casefold()
    if first == PROJECT_STATE_DIR.casefold():
        return "the editing-state folder" if len(relative.parts) == 1 else "a file in the editing-state folder"
    if len(relative.parts) > 1:
        return None
    if first in _LOG_FILES or is_log_leftover(first):
        return "the edit log"
    if first.startswith(LOCK_FILE.casefold()):
        return "the lock file"
    return None


def _same_file(target: Path, source: Path) -> bool:
    if target == resolved(source):
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
