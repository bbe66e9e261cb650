"""Crash-safe file writes: write to a temporary file, fsync, rename, fsync the folder."""

from __future__ import annotations

import hashlib
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

_TEMPORARY = ".tmp-"  # atomic_path writes `.NAME.tmp-PID` beside NAME


def temporary_target(name: str) -> str | None:
    """The name of the file a temporary file of `atomic_path` was written for (None: not one).

    A crash between writing and renaming leaves such a file behind; clean-ups find it by this name.
    """
    head, sep, pid = name.rpartition(_TEMPORARY)
    return head[1:] if sep and len(head) > 1 and head.startswith(".") and pid.isdigit() else None


def is_temporary_name(name: str, of: str | None = None) -> bool:
    """Whether `name` is one `atomic_path` writes first (for the file named `of`, or for any file)."""
    target = temporary_target(name)
    return target is not None and (of is None or target == of)


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path next to `target`; on success it replaces `target` atomically.

    The caller writes the file at the yielded path (by any library). On an exception the
    temporary file is removed and `target` is untouched.
    """
    target = Path(target)
    tmp = target.with_name(f".{target.name}{_TEMPORARY}{os.getpid()}")
    try:
        yield tmp
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        fsync_dir(target.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


def fsync_dir(folder: Path) -> None:
    """Make a rename inside `folder` durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()
