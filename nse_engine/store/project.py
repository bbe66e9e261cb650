"""A project: a folder holding the edit log (`project.sqlite`) and the editing-state files.

`Project` is the one way to open and change a project; it shares one database handle between
the queue (queue.py), fact import (fact_import.py), the batch history with its crash protocol
(batch_history.py) and the read queries (log_queries.py).

One writer at a time: opening a project for writing takes its lock (project_lock.py) until
`close`, and only the lock's holder cleans up after a crash. Readers open it read-only and
change nothing. A project on read-only media opens read-only by itself: it can be viewed and
chatted with, and every change says why it cannot be made. Failures of the disk under a project
come out as `StorageError`, with what to do.
"""

from __future__ import annotations

import functools
import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence, TypeVar, cast

from sqlite_utils import Database

from nse_engine.atomic import atomic_path
from nse_engine.errors import ProjectError, StorageError
from nse_engine.fact_files.validation import TokenLimit
from nse_engine.facts import EditRequest, FactOutcome
from nse_engine.paths import PROJECT_STATE_DIR, is_log_leftover
from nse_engine.progress import JobControl
from nse_engine.store import database, schema
from nse_engine.store.batch_history import BatchHistory, ensure_state_folder, refuse_states_without_log
from nse_engine.store.database import LOG_FILE
from nse_engine.store.fact_import import import_facts
from nse_engine.store.import_report import ImportReport
from nse_engine.store.log_queries import LogQueries
from nse_engine.store.project_lock import ProjectLock
from nse_engine.store.queue import FactQueue
from nse_engine.store.records import (
    Batch,
    Chat,
    Evaluation,
    Fact,
    FactEvaluation,
    RetentionPoint,
    Retry,
    StateFile,
    WriteState,
    WrittenOutcome,
)
from nse_engine.store.state_recovery import Recovery
from nse_engine.store.storage_errors import storage_error, storage_errors, storage_kind

__all__ = ["LOG_FILE", "STATE_DIR", "Project"]

STATE_DIR = PROJECT_STATE_DIR
READ_FOR_VIEWING = "it was opened for reading only"

_Method = TypeVar("_Method", bound=Callable[..., Any])


def _changes(action: str) -> Callable[[_Method], _Method]:
    """A method that changes the log: refused on a read-only project; disk failures become StorageError."""

    def wrap(method: _Method) -> _Method:
        @functools.wraps(method)
        def run(self: Project, *args: Any, **kwargs: Any) -> Any:
            self.require_writable(action)
            with storage_errors(self.log_path, action):
                return method(self, *args, **kwargs)

        return cast(_Method, run)

    return wrap


def _reads(method: _Method) -> _Method:
    @functools.wraps(method)
    def run(self: Project, *args: Any, **kwargs: Any) -> Any:
        with storage_errors(self.log_path, "read the project log"):
            return method(self, *args, **kwargs)

    return cast(_Method, run)


class Project:
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
        self.queue = FactQueue(db, self.queries)
        self.history = BatchHistory(db, self.queries, self.state_dir)

    # -- opening -----------------------------------------------------------------------------

    @classmethod
    def create(cls, folder: Path, base_model_source: str | None = None, fingerprint: str | None = None) -> Project:
        """Start a new project in `folder` (created if missing; must not hold a project yet).

        The base model may be named later, by the first `check_base_model`.
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

    # -- writing allowed? --------------------------------------------------------------------

    @property
    def read_only(self) -> bool:
        return self.read_only_reason is not None

    def require_writable(self, action: str) -> None:
        """Raise `ProjectError` saying why, when this project cannot be changed."""
        if self.read_only_reason is not None:
            raise ProjectError(f"cannot {action}: {self.read_only_reason}")

    @property
    @_reads
    def schema_version(self) -> int:
        return schema.applied_version(self._db)

    # -- base model --------------------------------------------------------------------------

    @property
    @_reads
    def base_model_source(self) -> str | None:
        return database.read_meta(self._db, "base_model_source")

    @property
    @_reads
    def base_model_fingerprint(self) -> str | None:
        return database.read_meta(self._db, "base_model_fingerprint")

    @property
    @_reads
    def created_at(self) -> str:
        return database.read_meta(self._db, "created_at") or ""

    @property
    @_reads
    def method(self) -> str | None:
        """The editing method the project was created with (None: not chosen yet, or a project from
        before methods were recorded; its batches say which)."""
        known = database.read_meta(self._db, "method")
        if known is None and self.queries.batches():
            return "nse"  # projects from before the choice existed were all edited with NSE
        return known

    def check_method(self, method: str) -> None:
        """Refuse a method other than the project's; the first one checked becomes it (when writable)."""
        known = self.method
        if known is not None and known != method:
            raise ProjectError(f"this project edits with {known}; it cannot continue with {method}")
        if not self.read_only and database.read_meta(self._db, "method") is None:
            with storage_errors(self.log_path, "record the editing method"), self._db.atomic():
                database.write_meta(self._db, "method", method)

    @property
    @_reads
    def chosen_settings(self) -> dict[str, Any]:
        """The settings the project was created with (NAS, ENCORE), kept for as long as it has no
        editing state; from its first batch on, the state file holds the settings in effect."""
        text = database.read_meta(self._db, "settings")
        return json.loads(text) if text else {}

    def record_chosen_settings(self, settings: Mapping[str, Any]) -> None:
        """Keep a new project's chosen settings, so that reopening it before its first batch keeps them."""
        if not self.read_only:
            with storage_errors(self.log_path, "record the project's settings"), self._db.atomic():
                database.write_meta(self._db, "settings", json.dumps(dict(settings), sort_keys=True))

    def check_base_model(self, source: str, fingerprint: str) -> None:
        """Refuse a base model other than the project's; the first model checked becomes it (when writable)."""
        known = self.base_model_fingerprint
        if known is None and not self.read_only:
            with storage_errors(self.log_path, "record the base model"), self._db.atomic():
                database.write_meta(self._db, "base_model_source", source)
                database.write_meta(self._db, "base_model_fingerprint", fingerprint)
        elif known is not None and known != fingerprint:
            raise ProjectError(
                f"this project edits {self.base_model_source} (fingerprint {known[:12]}…); "
                f"{source} is a different model (fingerprint {fingerprint[:12]}…)"
            )

    # -- the queue ---------------------------------------------------------------------------

    @_changes("queue facts")
    def queue_facts(self, requests: Iterable[EditRequest], source_file: str | None = None) -> list[int]:
        """Append facts to the queue, all or none; raises `InvalidFactError` naming each problem."""
        return self.queue.queue_facts(requests, source_file)

    @_reads
    def queued_facts(self) -> list[EditRequest]:
        """The queue in run order; each request carries its `fact_id`."""
        return [f.request for f in self.queries.queued_facts()]

    @_changes("change the fact")
    def update_fact(self, fact_id: int, request: EditRequest) -> EditRequest:
        return self.queue.update_fact(fact_id, request)

    @_changes("remove the fact")
    def remove_fact(self, fact_id: int) -> None:
        self.queue.remove_fact(fact_id)

    @_changes("reorder the queue")
    def reorder(self, fact_ids: Sequence[int]) -> None:
        self.queue.reorder(fact_ids)

    @_changes("queue the facts again")
    def requeue(self, fact_ids: Iterable[int]) -> None:
        self.queue.requeue(fact_ids)

    @_changes("queue the facts that did not hold again")
    def requeue_not_held(self, batch_ids: Iterable[int]) -> list[Retry]:
        """Queue copies of the applied facts of these batches that did not hold (see FactQueue)."""
        return self.queue.requeue_not_held(batch_ids)

    def import_facts(
        self,
        path: Path,
        dry_run: bool = False,
        control: JobControl | None = None,
        token_limit: TokenLimit | None = None,
        reapply: bool = False,
    ) -> ImportReport:
        """Queue the valid facts of a file in one transaction and report every rejected row.

        Rows identical to a queued fact, or to an applied one (unless `reapply`), are skipped and
        reported as such. A dry run works on a read-only project too.
        """
        if not dry_run:
            self.require_writable("import facts")
        with storage_errors(self.log_path, "import the facts"):
            return import_facts(self._db, self.queries, path, dry_run, control, token_limit, reapply)

    # -- batches -----------------------------------------------------------------------------

    @_changes("record the batch")
    def commit_batch(
        self,
        outcomes: Sequence[FactOutcome],
        method: str,
        hparams: Mapping[str, object],
        started: datetime,
        finished: datetime,
        write_state: WriteState | None,
        evaluations: Sequence[FactEvaluation] = (),
        metrics: Mapping[str, object] | None = None,
        before: Mapping[int, tuple[float | None, float | None]] | None = None,
    ) -> Batch:
        """Record a finished batch together with the state file it produced (see BatchHistory)."""
        return self.history.commit_batch(outcomes, method, hparams, started, finished, write_state, evaluations,
                                         metrics, before)

    @_changes("undo the batch")
    def undo_last_batch(self, write_state: WriteState | None) -> Batch:
        return self.history.undo_last_batch(write_state)

    @_reads
    def current_state(self) -> StateFile | None:
        return self.queries.current_state()

    @_reads
    def state_files(self) -> list[StateFile]:
        return self.queries.state_files()

    @_reads
    def current_state_file(self) -> Path | None:
        """The current state file, checked against its recorded checksum (None: the base model).

        Raises `DamagedStateError`, naming the last good state, when it is missing or damaged.
        """
        return self.history.current_state_file()

    @_reads
    def verify_current_state(self) -> None:
        self.history.verify_current_state()

    @_reads
    def recovery(self) -> Recovery | None:
        """How to go back to the last good state when the current one is damaged (None: it is intact)."""
        return self.history.recovery()

    @_changes("roll back to the last good state")
    def roll_back(self, discard_current: bool = False) -> Recovery | None:
        """Go back to the last good state (see BatchHistory.roll_back); None when nothing is damaged.

        `discard_current` sets the current state aside even though its checksum matches (it restores
        NaN weights: it was saved damaged).
        """
        return self.history.roll_back("was saved damaged (it restores NaN or infinite weights)" if discard_current else None)

    # -- chats -------------------------------------------------------------------------------

    def record_chat(self, prompt: str, answer: str) -> Chat | None:
        """Keep a chat turn, tied to the batch in effect now (None: the base model).

        A read-only project keeps no chats: None.
        """
        if self.read_only:
            return None
        with storage_errors(self.log_path, "keep the chat"):
            batch = self._db.execute("SELECT max(id) FROM batches WHERE undone_at IS NULL").fetchone()[0]
            created = database.now()
            chat_id = self._db.execute(
                "INSERT INTO chats (prompt, answer, batch_id, created_at) VALUES (?, ?, ?, ?)",
                [prompt, answer, batch, created],
            ).lastrowid
        return Chat(chat_id, prompt, answer, batch, created)

    @_reads
    def chats(self) -> list[Chat]:
        return self.queries.chats()

    # -- reading the log ---------------------------------------------------------------------

    @_reads
    def fact(self, fact_id: int) -> Fact:
        return self.queries.fact(fact_id)

    @_reads
    def facts(self, status: str | None = None, search: str | None = None, limit: int | None = None, offset: int = 0) -> list[Fact]:
        return self.queries.facts(status, search, limit, offset)

    @_reads
    def count_facts(self, status: str | None = None, search: str | None = None) -> int:
        return self.queries.count_facts(status, search)

    @_reads
    def batch(self, batch_id: int) -> Batch:
        return self.queries.batch(batch_id)

    @_reads
    def batches(self, include_undone: bool = True) -> list[Batch]:
        return self.queries.batches(include_undone)

    @_reads
    def evaluations(self, batch_id: int | None = None, fact_id: int | None = None, first_batch: int | None = None,
                    last_batch: int | None = None) -> list[Evaluation]:
        return self.queries.evaluations(batch_id, fact_id, first_batch, last_batch)

    @_reads
    def probabilities_before(self) -> dict[int, tuple[float | None, float | None]]:
        return self.queries.probabilities_before()

    @_reads
    def retention_series(self, first_batch: int | None = None, last_batch: int | None = None) -> list[RetentionPoint]:
        return self.queries.retention_series(first_batch, last_batch)

    @_reads
    def written_outcomes(self) -> dict[int, WrittenOutcome]:
        return self.queries.written_outcomes()


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
