"""Where an exported model may be written, and writing it so that a failure leaves nothing behind.

An export goes only into a new or empty folder, or into a non-empty one the user explicitly
agreed to replace (the app asks, naming what is there; the CLI never replaces). It never goes
into, around or inside the base model's files, nor into a project folder: writing the edited
weights over the base model made its projects unopenable for good ("edited on a different base
model"). The files are written into a hidden sibling folder that is renamed into place at the
end, so a full disk, a read-only target, Cancel or a crash leaves the target as it was.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping

from nse_engine.atomic import fsync_dir
from nse_engine.errors import OutputFileError
from nse_engine.model.builtin_models import BUILTIN_MODELS
from nse_engine.paths import PROJECT_LOG_FILE, holds_project

log = logging.getLogger(__name__)

SHOWN_ENTRIES = 5  # entries of a non-empty folder a message names
_STAGING = ".export-"  # hidden sibling folders: .<name>.export-<pid>-<random>


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
    target = _resolved(folder)
    for label, path in protected.items():
        place = _resolved(path)
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
    target = _resolved(folder)
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
        old = target.with_name(f".{target.name}.replaced-{os.getpid()}")
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
    """Delete hidden folders left beside `target` by an export whose process is gone (killed, crashed)."""
    for leftover in target.parent.glob(f".{target.name}{_STAGING}*"):
        pid = leftover.name.removeprefix(f".{target.name}{_STAGING}").split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            log.warning("removing %s, left by an export that did not finish", leftover)
            shutil.rmtree(leftover, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _resolved(path: Path) -> Path:
    return Path(path).expanduser().resolve()
