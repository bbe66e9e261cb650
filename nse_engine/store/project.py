"""A project: a folder holding the edit log (`project.sqlite`) and the editing-state files.

`Project` opens, creates and closes a project; its parts, which share its one database handle,
are its API: `meta` (base model, method, creation settings: project_meta.py), `queue` (queued
facts and fact import: queue.py), `history` (batches and undo with the crash protocol:
batch_history.py), `chats` (chats.py) and `queries` (everything read: log_queries.py). Each part
refuses changes on a read-only project and reports disk failures as `StorageError` itself.

One writer at a time: opening a project for writing takes its lock (project_lock.py) until
`close`, and only the lock's holder cleans up after a crash. Readers open it read-only and
change nothing. A project on read-only media opens read-only by itself: it can be viewed and
chatted with, and every change says why it cannot be made. Failures of the disk under a project
come out as `StorageError`, with what to do.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlite_utils import Database

from nse_engine.atomic import atomic_path
from nse_engine.errors import ProjectError, StorageError
from nse_engine.paths import PROJECT_STATE_DIR, is_log_leftover
from nse_engine.store import database
from nse_engine.store.batch_history import BatchHistory, ensure_state_folder, refuse_states_without_log
from nse_engine.store.chats import ChatLog
from nse_engine.store.database import LOG_FILE
from nse_engine.store.log_part import Writability
from nse_engine.store.log_queries import LogQueries
from nse_engine.store.project_lock import ProjectLock
from nse_engine.store.project_meta import ProjectMeta
from nse_engine.store.queue import FactQueue
from nse_engine.store.storage_errors import storage_error, storage_errors, storage_kind

__all__ = ["LOG_FILE", "STATE_DIR", "Project"]

STATE_DIR = PROJECT_STATE_DIR
READ_FOR_VIEWING = "it was opened for reading only"


class Project(Writability):
    """The edit log of one project folder, and the only way to change it.

    A SQLite connection belongs to the thread that opened it: create or open the project on
    the thread that will use it (in the app, the engine worker thread) and call it from there
    only. One writer at a time may have a project open; readers any time.
    """

    def __init__(self, folder: Path, db: Database, lock: ProjectLock | None, read_only_reason: str | None = None) -> None:
        """Use `Project.create`, `Project.open` or `Project.open_or_create`."""
        self.folder = folder
        self.log_path = folder / LOG_FILE
        self.state_dir = folder / STATE_DIR
        self.read_only_reason = read_only_reason  # None: open for writing (this process holds the lock)
        self._db = db
        self._lock = lock
        self.queries = LogQueries(db, self.state_dir)
        self.meta = ProjectMeta(db, self.queries, read_only_reason)
        self.queue = FactQueue(db, self.queries, read_only_reason)
        self.history = BatchHistory(db, self.queries, read_only_reason)
        self.chats = ChatLog(db, self.queries, read_only_reason)

    # -- opening -----------------------------------------------------------------------------

    @classmethod
    def create(cls, folder: Path, base_model_source: str | None = None, fingerprint: str | None = None) -> Project:
        """Start a new project in `folder` (created if missing; must not hold a project yet).

        The base model may be named later, by the first `meta.check_base_model`.
        """
        folder = Path(folder)
        lock = _lock_folder(folder)
        try:
            if (folder / LOG_FILE).exists():
                raise ProjectError(f"{folder} already holds a project; open it instead")
            return cls._create_locked(folder, lock, base_model_source, fingerprint)
        except BaseException:
            lock.release()
            raise

    @classmethod
    def open(cls, folder: Path, read_only: bool = False) -> Project:
        """Open an existing project for writing (taking its lock), or with `read_only` for reading.

        For writing, the log is brought up to the current schema and crash leftovers are removed;
        raises `ProjectLockedError` while another window or process has the project open for
        writing. A project whose folder cannot be written opens read-only instead.
        """
        folder = Path(folder)
        path = folder / LOG_FILE
        if not path.is_file():
            raise ProjectError(f"{folder} is not a project folder (no {LOG_FILE})")
        database.check_log_file(path)
        unwritable = _why_not_writable(folder)
        if read_only or unwritable:
            return cls._open_read_only(folder, unwritable or READ_FOR_VIEWING, media_read_only=bool(unwritable))
        lock = _lock_folder(folder)
        try:
            return cls._open_locked(folder, lock)
        except BaseException:
            lock.release()
            raise

    @classmethod
    def open_or_create(cls, folder: Path) -> tuple[Project, bool]:
        """For writers: the project in `folder`, created when there is none; (project, created)."""
        folder = Path(folder)
        if (folder / LOG_FILE).exists():
            return cls.open(folder), False
        lock = _lock_folder(folder)
        try:
            if (folder / LOG_FILE).exists():  # another writer created it meanwhile
                database.check_log_file(folder / LOG_FILE)
                return cls._open_locked(folder, lock), False
            return cls._create_locked(folder, lock), True
        except BaseException:
            lock.release()
            raise

    @classmethod
    def _create_locked(cls, folder: Path, lock: ProjectLock, base_model_source: str | None = None,
                       fingerprint: str | None = None) -> Project:
        """Build the log under a temporary name and rename it into place: a crash never leaves half a log."""
        for leftover in folder.glob(f".{LOG_FILE}*"):
            if is_log_leftover(leftover.name):
                leftover.unlink()
        refuse_states_without_log(folder / STATE_DIR)
        with storage_errors(folder, "create the project"):
            ensure_state_folder(folder / STATE_DIR)
            with atomic_path(folder / LOG_FILE) as tmp:
                db = database.connect(tmp)
                try:
                    database.migrate(db, folder)
                    with db.atomic():
                        database.write_meta(db, "created_at", database.now())
                        database.write_meta(db, "base_model_source", base_model_source)
                        database.write_meta(db, "base_model_fingerprint", fingerprint)
                    database.fold_wal(db)  # the rename moves the file only: nothing may be left in its WAL
                finally:
                    db.close()
            db = database.connect(folder / LOG_FILE)
        return cls(folder, db, lock)

    @classmethod
    def _open_locked(cls, folder: Path, lock: ProjectLock) -> Project:
        path = folder / LOG_FILE
        _read_only_log(path, media_read_only=False).close()  # before a writer's connection could change the file
        with storage_errors(path, "open the project log"):
            db = database.connect(path)
            try:
                database.migrate(db, folder)
                project = cls(folder, db, lock)
                ensure_state_folder(project.state_dir)
                project.history.remove_orphan_states()
            except BaseException:
                db.close()
                raise
        return project

    @classmethod
    def _open_read_only(cls, folder: Path, reason: str, media_read_only: bool) -> Project:
        path = folder / LOG_FILE
        db = _read_only_log(path, media_read_only)
        if database.has_pending_migrations(db):
            db.close()
            if media_read_only:
                raise ProjectError(f"{path} was written by an older NSE Studio and must be brought up to date "
                                   f"once, which needs a writable disk: {reason}")
            cls.open(folder).close()  # a writer, briefly, brings the log up to date
            db = _read_only_log(path, media_read_only)
        return cls(folder, db, None, reason)

    def close(self) -> None:
        self._db.close()
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _lock_folder(folder: Path) -> ProjectLock:
    """Create `folder` if needed and take its write lock."""
    if folder.exists() and not folder.is_dir():
        raise ProjectError(f"{folder} is a file, not a folder; give a new or existing project folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return ProjectLock.acquire(folder)
    except OSError as exc:
        kind = storage_kind(exc, folder)
        if kind in ("read-only", "full"):
            raise storage_error(exc, folder, "open the project for writing") from exc
        raise ProjectError(f"cannot use the project folder {folder}: {exc.strerror or exc}") from None


def _why_not_writable(folder: Path) -> str | None:
    """Why a project folder cannot be written (read-only media, no permission), or None."""
    try:
        read_only_media = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (AttributeError, OSError):  # no statvfs (Windows)
        read_only_media = False
    if read_only_media:
        return f"{folder} is on read-only media; copy the project to a writable disk to change it"
    if not os.access(folder, os.W_OK) or not os.access(folder / LOG_FILE, os.W_OK):
        return f"{folder} is read-only for this user; copy the project to a writable folder to change it"
    return None


def _read_only_log(path: Path, media_read_only: bool) -> Database:
    """A read-only connection to a log that passed the schema check (refusing leaves the file as it is).

    On read-only media SQLite cannot create the WAL index a normal reader needs; there the file is
    read as immutable (nothing can change it anyway).
    """
    try:
        return _checked_reader(path, immutable=False)
    except StorageError:
        if not media_read_only:
            raise
    return _checked_reader(path, immutable=True)


def _checked_reader(path: Path, immutable: bool) -> Database:
    with storage_errors(path, "read the project log"):
        db = database.connect(path, read_only=True, immutable=immutable)
        try:
            database.check_schema(db, path)
        except BaseException:
            db.close()
            raise
    return db
