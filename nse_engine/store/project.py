"""A project: a folder holding the edit log (`project.sqlite`) and the editing-state files.

`Project` is the one way to open and change a project; it shares one database handle between
the queue (queue.py), fact import (fact_import.py), the batch history with its crash protocol
(batch_history.py) and the read queries (log_queries.py).
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from sqlite_utils import Database

from nse_engine.errors import ProjectError
from nse_engine.facts import EditRequest, FactOutcome
from nse_engine.progress import JobControl
from nse_engine.store import database, schema
from nse_engine.store.batch_history import BatchHistory
from nse_engine.store.fact_import import import_facts
from nse_engine.store.importing import ImportReport
from nse_engine.store.log_queries import LogQueries
from nse_engine.store.queue import FactQueue
from nse_engine.store.records import (
    Batch,
    Chat,
    Evaluation,
    Fact,
    FactEvaluation,
    RetentionPoint,
    StateFile,
    WriteState,
    WrittenOutcome,
)
from nse_engine.store.validation import TokenLimit

LOG_FILE = "project.sqlite"
STATE_DIR = "state"


class Project:
    """The edit log of one project folder, and the only way to change it.

    A SQLite connection belongs to the thread that opened it: create or open the project on
    the thread that will use it (in the app, the engine worker thread) and call it from there
    only. One process at a time may have a project open.
    """

    def __init__(self, folder: Path, db: Database) -> None:
        """Use `Project.create` or `Project.open`."""
        self.folder = folder
        self.state_dir = folder / STATE_DIR
        self._db = db
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
        if (folder / LOG_FILE).exists():
            raise ProjectError(f"{folder} already holds a project; open it instead")
        try:
            (folder / STATE_DIR).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ProjectError(f"cannot create the project folder {folder}: {exc.strerror or exc}") from None
        db = database.connect(folder / LOG_FILE)
        database.migrate(db, folder)
        with db.atomic():
            database.write_meta(db, "created_at", database.now())
            database.write_meta(db, "base_model_source", base_model_source)
            database.write_meta(db, "base_model_fingerprint", fingerprint)
        return cls(folder, db)

    @classmethod
    def open(cls, folder: Path) -> Project:
        """Open an existing project, bring its log up to the current schema, and drop crash leftovers."""
        folder = Path(folder)
        path = folder / LOG_FILE
        if not path.is_file():
            raise ProjectError(f"{folder} is not a project folder (no {LOG_FILE})")
        db = database.connect(path)
        try:
            database.check_schema(db, path)
            database.migrate(db, folder)
        except sqlite3.DatabaseError as exc:
            db.close()
            raise ProjectError(f"{path} is not a readable project log: {exc}") from None
        except ProjectError:
            db.close()
            raise
        project = cls(folder, db)
        project.state_dir.mkdir(exist_ok=True)
        project.history.remove_orphan_states()
        return project

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        return schema.applied_version(self._db)

    # -- base model --------------------------------------------------------------------------

    @property
    def base_model_source(self) -> str | None:
        return database.read_meta(self._db, "base_model_source")

    @property
    def base_model_fingerprint(self) -> str | None:
        return database.read_meta(self._db, "base_model_fingerprint")

    @property
    def created_at(self) -> str:
        return database.read_meta(self._db, "created_at") or ""

    @property
    def method(self) -> str | None:
        """The editing method the project was created with (None: not chosen yet, or a project from
        before methods were recorded; its batches say which)."""
        known = database.read_meta(self._db, "method")
        if known is None and self.queries.batches():
            return "nse"  # projects from before the choice existed were all edited with NSE
        return known

    def check_method(self, method: str) -> None:
        """Refuse a method other than the project's; the first one checked becomes it."""
        known = self.method
        if known is not None and known != method:
            raise ProjectError(f"this project edits with {known}; it cannot continue with {method}")
        if database.read_meta(self._db, "method") is None:
            with self._db.atomic():
                database.write_meta(self._db, "method", method)

    def check_base_model(self, source: str, fingerprint: str) -> None:
        """Refuse a base model other than the project's; the first model checked becomes it."""
        known = self.base_model_fingerprint
        if known is None:
            with self._db.atomic():
                database.write_meta(self._db, "base_model_source", source)
                database.write_meta(self._db, "base_model_fingerprint", fingerprint)
        elif known != fingerprint:
            raise ProjectError(
                f"this project edits {self.base_model_source} (fingerprint {known[:12]}…); "
                f"{source} is a different model (fingerprint {fingerprint[:12]}…)"
            )

    # -- the queue ---------------------------------------------------------------------------

    def queue_facts(self, requests: Iterable[EditRequest], source_file: str | None = None) -> list[int]:
        """Append facts to the queue, all or none; raises `InvalidFactError` naming each problem."""
        return self.queue.queue_facts(requests, source_file)

    def queued_facts(self) -> list[EditRequest]:
        """The queue in run order; each request carries its `fact_id`."""
        return [f.request for f in self.queries.queued_facts()]

    def update_fact(self, fact_id: int, request: EditRequest) -> EditRequest:
        return self.queue.update_fact(fact_id, request)

    def remove_fact(self, fact_id: int) -> None:
        self.queue.remove_fact(fact_id)

    def reorder(self, fact_ids: Sequence[int]) -> None:
        self.queue.reorder(fact_ids)

    def requeue(self, fact_ids: Iterable[int]) -> None:
        self.queue.requeue(fact_ids)

    def import_facts(
        self, path: Path, dry_run: bool = False, control: JobControl | None = None, token_limit: TokenLimit | None = None
    ) -> ImportReport:
        """Queue the valid facts of a file in one transaction and report every rejected row."""
        return import_facts(self._db, self.queries, path, dry_run, control, token_limit)

    # -- batches -----------------------------------------------------------------------------

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

    def undo_last_batch(self, write_state: WriteState | None) -> Batch:
        return self.history.undo_last_batch(write_state)

    def current_state(self) -> StateFile | None:
        return self.queries.current_state()

    def state_files(self) -> list[StateFile]:
        return self.queries.state_files()

    def current_state_file(self) -> Path | None:
        return self.history.current_state_file()

    def verify_current_state(self) -> None:
        self.history.verify_current_state()

    # -- chats -------------------------------------------------------------------------------

    def record_chat(self, prompt: str, answer: str) -> Chat:
        """Keep a chat turn, tied to the batch in effect now (None: the base model)."""
        batch = self._db.execute("SELECT max(id) FROM batches WHERE undone_at IS NULL").fetchone()[0]
        created = database.now()
        chat_id = self._db.execute(
            "INSERT INTO chats (prompt, answer, batch_id, created_at) VALUES (?, ?, ?, ?)", [prompt, answer, batch, created]
        ).lastrowid
        return Chat(chat_id, prompt, answer, batch, created)

    def chats(self) -> list[Chat]:
        return self.queries.chats()

    # -- reading the log ---------------------------------------------------------------------

    def fact(self, fact_id: int) -> Fact:
        return self.queries.fact(fact_id)

    def facts(self, status: str | None = None, search: str | None = None, limit: int | None = None, offset: int = 0) -> list[Fact]:
        return self.queries.facts(status, search, limit, offset)

    def count_facts(self, status: str | None = None, search: str | None = None) -> int:
        return self.queries.count_facts(status, search)

    def batch(self, batch_id: int) -> Batch:
        return self.queries.batch(batch_id)

    def batches(self, include_undone: bool = True) -> list[Batch]:
        return self.queries.batches(include_undone)

    def evaluations(self, batch_id: int | None = None, fact_id: int | None = None, first_batch: int | None = None,
                    last_batch: int | None = None) -> list[Evaluation]:
        return self.queries.evaluations(batch_id, fact_id, first_batch, last_batch)

    def probabilities_before(self) -> dict[int, tuple[float | None, float | None]]:
        return self.queries.probabilities_before()

    def retention_series(self, first_batch: int | None = None, last_batch: int | None = None) -> list[RetentionPoint]:
        return self.queries.retention_series(first_batch, last_batch)

    def written_outcomes(self) -> dict[int, WrittenOutcome]:
        return self.queries.written_outcomes()
