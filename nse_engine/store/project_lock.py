"""One writer per project: an OS advisory lock on a file in the project folder.

Every writer holds it from opening the project to closing it (the app while a project is open,
each CLI command that changes one); readers never take it. The OS drops the lock when its
process ends, so a crash leaves no stale lock. Who holds it goes into a side file, so a second
writer can be told which process to close.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from filelock import FileLock, Timeout

from nse_engine.errors import ProjectLockedError

LOCK_FILE = ".nse-lock"
OWNER_FILE = ".nse-lock-owner.json"
OWNER_WAIT_S = 1.0  # the holder writes its side file just after taking the lock


class ProjectLock:
    """The held write lock of one project folder; `release` it when the project closes."""

    def __init__(self, folder: Path, lock: FileLock) -> None:
        self.folder = folder
        self._lock = lock

    @classmethod
    def acquire(cls, folder: Path) -> ProjectLock:
        """Take the lock now or raise `ProjectLockedError` naming its holder.

        Raises `OSError` when the lock file cannot be created (read-only media).
        """
        folder = Path(folder)
        lock = FileLock(folder / LOCK_FILE, timeout=0, thread_local=False)
        if not _try_acquire(lock):
            owner = _read_owner(folder)
            # no owner after the wait: the holder has most likely just finished, so try once more
            if owner is not None or not _try_acquire(lock):
                raise ProjectLockedError(_held_message(folder, owner))
        _write_owner(folder)
        return cls(folder, lock)

    def release(self) -> None:
        try:
            (self.folder / OWNER_FILE).unlink(missing_ok=True)
        except OSError:
            pass
        self._lock.release()


def _try_acquire(lock: FileLock) -> bool:
    try:
        lock.acquire()
    except Timeout:
        return False
    return True


def _write_owner(folder: Path) -> None:
    """Best effort: a full disk must not stop the project from opening (the lock itself is held)."""
    owner = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:200] if sys.argv else "",
        "since": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    partial = folder / f"{OWNER_FILE}.{os.getpid()}.tmp"
    try:
        partial.write_text(json.dumps(owner), encoding="utf-8")
        os.replace(partial, folder / OWNER_FILE)  # a second writer never reads half a file
    except OSError:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)


def _read_owner(folder: Path) -> dict | None:
    """The holder's side file; it may lag the lock by a moment, so wait up to OWNER_WAIT_S for it."""
    deadline = time.monotonic() + OWNER_WAIT_S
    while True:
        try:
            owner = json.loads((folder / OWNER_FILE).read_text(encoding="utf-8"))
            if all(key in owner for key in ("pid", "host", "command", "since")):
                return owner
        except (OSError, ValueError, TypeError):
            pass
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.05)


def _held_message(folder: Path, owner: dict | None) -> str:
    if owner is None:
        return f"{folder} is open in another program of NSE Studio; close it there, then try again."
    pid, host, command, since = owner["pid"], owner["host"], owner["command"], owner["since"]
    if pid == os.getpid() and host == socket.gethostname():
        return (f"{folder} is already open in this process (in another window of NSE Studio); "
                "close it there, then try again.")
    return (f"{folder} is open in another process: pid {pid} on {host} ({command}), since {since}. "
            "Close it there or wait for it to finish, then try again.")
