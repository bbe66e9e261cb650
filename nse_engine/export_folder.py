"""Where an exported model may be written, and writing it so that a failure leaves nothing behind.

An export goes only into a new or empty folder, or into a non-empty one the user explicitly
agreed to replace (the app asks, naming what is there; the CLI never replaces). It never goes
into, around or inside the base model's files, nor into a project folder: writing the edited
weights over the base model made its projects unopenable for good ("edited on a different base
model"). The files are written into a hidden sibling folder that is renamed into place at the
end, so a full disk, a read-only target, Cancel or a crash leaves the target as it was.
"""

from __future__ import annotations

import glob
import logging
import os
import secrets
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping

import psutil

from nse_engine.atomic import fsync_dir
from nse_engine.errors import OutputFileError
from nse_engine.model.builtin_models import BUILTIN_MODELS
from nse_engine.paths import PROJECT_LOG_FILE, holds_project, resolved

log = logging.getLogger(__name__)

SHOWN_ENTRIES = 5  # entries of a non-empty folder a message names
_STAGING = ".export-"  # hidden sibling folders: .<name>.export-<pid>-<random>
_REPLACED = ".replaced-"  # a replaced folder's old contents until the new one is in place: .<name>.replaced-<pid>


@dataclass(frozen=True)
class ExportPlan:
    """What an export into a chosen folder would do, for the confirmations asked before it starts."""

    replaces: tuple[str, ...]  # what is in the folder now (sorted names); empty: a new or empty folder
    active_edits: int  # edits in effect: 0 means the export is the base model unchanged

    @property
    def replaces_text(self) -> str:
        """What the folder holds, as a confirmation names it."""
        return describe_entries(self.replaces)


def base_model_path(source: str) -> Path:
    """The file or folder a model was loaded from (a built-in model's converted folder for its key)."""
    builtin = BUILTIN_MODELS.get(source)
    return builtin.folder if builtin is not None else Path(source).expanduser()


def check_export_target(folder: Path, protected: Mapping[str, Path], replace: bool = False) -> tuple[str, ...]:
    """Refuse, before any work, a folder an export must not write; returns what it would replace.

    `protected` names the places an export must never touch (the base model, the open project):
    the folder may be none of them, hold none of them and lie inside none of them. Any folder
    holding a project log, or inside one, is refused as well. A folder with entries is refused
    unless `replace`.
    """
    target = resolved(Path(folder).expanduser())
    _remove_stale_staging(target)  # an interrupted replace puts the old folder back before it is judged
    for label, path in protected.items():
        place = resolved(Path(path).expanduser())
        if target == place or target in place.parents or place in target.parents:
            where = "is" if target == place else "holds" if target in place.parents else "is inside"
            raise OutputFileError(f"cannot export into {folder}: it {where} {label} ({path}); choose a new folder")
    project = next((p for p in (target, *target.parents) if holds_project(p)), None)
    if project is not None:
        raise OutputFileError(f"cannot export into {folder}: {project} is a project folder; choose a folder outside it")
    if target.exists() and not target.is_dir():
        raise OutputFileError(f"cannot export into {folder}: it is a file; name a new folder")
    if not target.parent.is_dir():
        raise OutputFileError(f"cannot export into {folder}: the folder {target.parent} does not exist")
    if not os.access(target.parent, os.W_OK):  # EROFS on read-only media, for root too
        raise OutputFileError(f"cannot export into {folder}: {target.parent} is read-only; choose a writable place")
    try:
        entries = tuple(sorted(p.name for p in target.iterdir())) if target.is_dir() else ()
        if entries and replace and any(target.rglob(PROJECT_LOG_FILE)):
            raise OutputFileError(f"cannot replace {folder}: it holds a project; choose a new folder")
    except OSError as exc:
        raise OutputFileError(f"cannot export into {folder}: {exc.strerror or exc}; choose another folder") from exc
    if entries and not replace:
        raise OutputFileError(
            f"cannot export into {folder}: it is not empty ({describe_entries(entries)}); "
            "export into a new or empty folder"
        )
    return entries


def describe_entries(entries: tuple[str, ...]) -> str:
    """“config.json, model.safetensors and 3 more”: what a message says a folder holds."""
    shown = ", ".join(entries[:SHOWN_ENTRIES])
    more = len(entries) - SHOWN_ENTRIES
    return f"{shown} and {more} more" if more > 0 else shown


@contextmanager
def staged_folder(folder: Path, replace: bool = False) -> Iterator[Path]:
    """Yield an empty hidden folder beside `folder`; on success it becomes `folder`.

    With `replace` a non-empty `folder` is swapped out and deleted only once the new one is in
    place. On any exception the hidden folder is deleted and `folder` is as it was; a failure of
    the disk becomes `OutputFileError` saying so.
    """
    target = resolved(Path(folder).expanduser())
    _remove_stale_staging(target)
    staging = target.with_name(f".{target.name}{_STAGING}{os.getpid()}-{secrets.token_hex(4)}")
    try:
        staging.mkdir()  # the user's umask, as any folder they make (mkdtemp's would be private)
    except OSError as exc:
        raise _write_error(folder, exc) from exc
    try:
        yield staging
        _sync_tree(staging)
        _move_into_place(staging, target, replace)
    except OSError as exc:
        raise _write_error(folder, exc) from exc
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _move_into_place(staging: Path, target: Path, replace: bool) -> None:
    old = None
    if replace and target.exists() and any(target.iterdir()):
        old = target.with_name(f".{target.name}{_REPLACED}{os.getpid()}")
        os.rename(target, old)
    try:
        os.replace(staging, target)  # onto a missing or empty folder
    except OSError:
        if old is not None:
            os.rename(old, target)
        raise
    fsync_dir(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _write_error(folder: Path, exc: OSError) -> OutputFileError:
    reason = exc.strerror or str(exc)
    return OutputFileError(
        f"cannot export into {folder}: {reason}; nothing was written there (free some space or choose a writable folder)"
    )


def _sync_tree(folder: Path) -> None:
    """Make the written files durable before the rename makes them visible."""
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
    fsync_dir(folder)


def _remove_stale_staging(target: Path) -> None:
    """Clean up beside `target` after an export whose process is gone (killed, crashed).

    Its hidden staging folder is deleted. The user's old contents, set aside by a confirmed
    replace (`.NAME.replaced-PID`) that died before the new folder was in place, are put back
    when `target` is missing, and otherwise left where they are, with a warning naming them.
    """
    name = glob.escape(target.name)
    for leftover in target.parent.glob(f".{name}{_STAGING}*"):
        pid = leftover.name.removeprefix(f".{target.name}{_STAGING}").split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            log.warning("removing %s, left by an export that did not finish", leftover)
            shutil.rmtree(leftover, ignore_errors=True)
    for old in target.parent.glob(f".{name}{_REPLACED}*"):
        pid = old.name.removeprefix(f".{target.name}{_REPLACED}")
        if not pid.isdigit() or _alive(int(pid)):
            continue
        if not os.path.lexists(target):
            try:
                os.rename(old, target)
                log.warning("put %s back: an export that was replacing it did not finish", target)
                continue
            except OSError as exc:
                log.warning("could not put %s back (%s)", target, exc.strerror or exc)
        log.warning("%s holds what %s held before an export that did not finish replaced it; "
                    "move back what you need, then delete it", old, target)


def _alive(pid: int) -> bool:
    """Does process `pid` still run? Not os.kill(pid, 0): on Windows signal 0 is CTRL_C_EVENT."""
    return psutil.pid_exists(pid)
