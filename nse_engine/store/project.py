"""A project: a folder holding the edit log (`project.sqlite`) and the editing-state files.

The log and the state files never disagree, even if the process is killed at any moment:
a new state file is written under a fresh name (temporary file, fsync, rename) *before* the
one transaction that records it; the current state is the newest state file the log names,
and any other file in `state/` is a leftover of a crash, removed on open.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Mapping, NamedTuple, Sequence

from sqlite_utils import Database

from nse_engine.atomic import atomic_path, sha256_file
from nse_engine.editing.requests import EditRequest, FactOutcome, NeighborhoodCheck
from nse_engine.errors import ProjectError
from nse_engine.progress import JobControl, silent
from nse_engine.store import schema
from nse_engine.store.importing import FactFile, ImportReport, RejectedRow, SourceRecord
from nse_engine.store.records import (
    Batch,
    Chat,
    Evaluation,
    Fact,
    FactEvaluation,
    RetentionPoint,
    StateFile,
    WriteState,
)
from nse_engine.store.validation import FactProblem, InvalidFactError, TokenLimit, build_fact, fields_of

log = logging.getLogger(__name__)

LOG_FILE = "project.sqlite"
STATE_DIR = "state"
STATE_SUFFIX = ".safetensors"
IMPORT_PHASE = "importing facts"
_IMPORT_CHUNK = 2000  # rows per INSERT round trip and per progress report

_to_json = json.JSONEncoder(ensure_ascii=False).encode
_FACT_COLUMNS = (
    "id, subject, prompt, target_new, target_true, paraphrases, neighborhood, relation, "
    "source_file, source_line, created_at, status, position, batch_id, reason"
)
_INSERT_FACT = (
    "INSERT INTO facts (id, subject, prompt, target_new, target_true, paraphrases, neighborhood, relation, "
    "source_file, source_line, created_at, status, position) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?)"
)


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
        project = cls(folder, _connect(folder / LOG_FILE))
        project._migrate()
        with project._db.atomic():
            project._set_meta("created_at", _now())
            project._set_meta("base_model_source", base_model_source)
            project._set_meta("base_model_fingerprint", fingerprint)
        return project

    @classmethod
    def open(cls, folder: Path) -> Project:
        """Open an existing project, bring its log up to the current schema, and drop crash leftovers."""
        folder = Path(folder)
        path = folder / LOG_FILE
        if not path.is_file():
            raise ProjectError(f"{folder} is not a project folder (no {LOG_FILE})")
        project = cls(folder, _connect(path))
        try:
            if not schema.MIGRATIONS.applied(project._db):
                raise ProjectError(f"{path} is a SQLite file but not an NSE Studio project")
            newer = schema.unknown_migrations(project._db)
            if newer:
                raise ProjectError(f"{path} was written by a newer NSE Studio (schema {', '.join(newer)}); update the app")
            project._migrate()
        except sqlite3.DatabaseError as exc:
            project.close()
            raise ProjectError(f"{path} is not a readable project log: {exc}") from None
        except ProjectError:
            project.close()
            raise
        project.state_dir.mkdir(exist_ok=True)
        project._remove_orphan_states()
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

    def _migrate(self) -> None:
        pending = schema.MIGRATIONS.pending(self._db)
        if pending:
            log.info("migrating %s: %s", self.folder, ", ".join(m.name for m in pending))
            schema.MIGRATIONS.apply(self._db)

    def _remove_orphan_states(self) -> None:
        named = {row["file_name"] for row in self._db.query("SELECT file_name FROM state_files")}
        for path in self.state_dir.iterdir():
            if path.name not in named and path.is_file():
                log.warning("removing %s: no batch in the log names it (left by an interrupted run)", path)
                path.unlink()

    # -- base model --------------------------------------------------------------------------

    @property
    def base_model_source(self) -> str | None:
        return self._meta("base_model_source")

    @property
    def base_model_fingerprint(self) -> str | None:
        return self._meta("base_model_fingerprint")

    @property
    def created_at(self) -> str:
        return self._meta("created_at") or ""

    def check_base_model(self, source: str, fingerprint: str) -> None:
        """Refuse a base model other than the project's; the first model checked becomes it."""
        known = self.base_model_fingerprint
        if known is None:
            with self._db.atomic():
                self._set_meta("base_model_source", source)
                self._set_meta("base_model_fingerprint", fingerprint)
        elif known != fingerprint:
            raise ProjectError(
                f"this project edits {self.base_model_source} (fingerprint {known[:12]}…); "
                f"{source} is a different model (fingerprint {fingerprint[:12]}…)"
            )

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return row[0] if row else None

    def _set_meta(self, key: str, value: str | None) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", [key, value])

    # -- the queue ---------------------------------------------------------------------------

    def queue_facts(self, requests: Iterable[EditRequest], source_file: str | None = None) -> list[int]:
        """Append facts to the queue, all or none; raises `InvalidFactError` naming each problem."""
        problems: list[FactProblem] = []
        built: list[EditRequest] = []
        queued = self._queued_keys()
        seen: dict[tuple[str, str], int] = {}
        for index, request in enumerate(requests, start=1):
            fact, found = _rebuild(request)
            if fact is not None:
                key = (fact.subject, fact.prompt)
                found = _duplicate_problems(key, fact.target_new, queued)
                if key in seen:
                    found.append(FactProblem("prompt", "duplicate", f"same subject and prompt as fact {seen[key]} of this list"))
                seen.setdefault(key, index)
                built.append(fact)
            problems += [FactProblem(p.field, p.code, f"fact {index}: {p.message}") for p in found]
        if problems:
            raise InvalidFactError(problems)
        with self._db.atomic():
            next_id, next_position = self._next_fact_slot()
            rows = [
                _fact_row(next_id + i, next_position + i, fact, source_file, None, _now())
                for i, fact in enumerate(built)
            ]
            self._db.conn.executemany(_INSERT_FACT, rows)
        return [row[0] for row in rows]

    def queued_facts(self) -> list[EditRequest]:
        """The queue in run order; each request carries its `fact_id`."""
        return [f.request for f in self._select_facts("WHERE status = 'queued'", [], "ORDER BY position, id")]

    def update_fact(self, fact_id: int, request: EditRequest) -> EditRequest:
        """Replace a queued fact's contents (the GUI's edit form)."""
        self._require_status(fact_id, {"queued"}, "edit")
        fact, problems = _rebuild(request)
        if fact is not None:
            others = {k: v for k, v in self._queued_keys().items() if v[0] != fact_id}
            problems = _duplicate_problems((fact.subject, fact.prompt), fact.target_new, others)
        if problems:
            raise InvalidFactError(problems)
        row = _fact_row(fact_id, 0, fact, None, None, "")  # type: ignore[arg-type]
        self._db.execute(
            "UPDATE facts SET subject = ?, prompt = ?, target_new = ?, target_true = ?, paraphrases = ?, "
            "neighborhood = ?, relation = ? WHERE id = ?",
            [*row[1:8], fact_id],
        )
        return self.fact(fact_id).request

    def remove_fact(self, fact_id: int) -> None:
        """Delete a queued fact that never ran (a fact that ran stays, as part of its batch's record)."""
        self._require_status(fact_id, {"queued"}, "remove")
        ran = self._db.execute("SELECT batch_id FROM batch_facts WHERE fact_id = ? LIMIT 1", [fact_id]).fetchone()
        if ran:
            raise ProjectError(f"fact {fact_id} ran in batch {ran[0]} and stays in its record; it can only be left unqueued")
        self._db.execute("DELETE FROM facts WHERE id = ?", [fact_id])

    def reorder(self, fact_ids: Sequence[int]) -> None:
        """Set the run order of the queue; `fact_ids` must name every queued fact once."""
        queued = [r[0] for r in self._db.execute("SELECT id FROM facts WHERE status = 'queued'").fetchall()]
        if sorted(fact_ids) != sorted(queued):
            raise ProjectError("the new order must list every queued fact exactly once")
        with self._db.atomic():
            self._db.conn.executemany(
                "UPDATE facts SET position = ? WHERE id = ?", [(i, fid) for i, fid in enumerate(fact_ids, start=1)]
            )

    def requeue(self, fact_ids: Iterable[int]) -> None:
        """Put failed or undone facts back at the end of the queue."""
        fact_ids = list(fact_ids)
        queued = self._queued_keys()
        problems = []
        for fact_id in fact_ids:
            self._require_status(fact_id, {"failed", "undone"}, "requeue")
            request = self.fact(fact_id).request
            problems += _duplicate_problems((request.subject, request.prompt), request.target_new, queued)
        if problems:
            raise InvalidFactError(problems)
        with self._db.atomic():
            _, position = self._next_fact_slot()
            self._db.conn.executemany(
                "UPDATE facts SET status = 'queued', reason = NULL, position = ? WHERE id = ?",
                [(position + i, fid) for i, fid in enumerate(fact_ids)],
            )

    # -- importing ---------------------------------------------------------------------------

    def import_facts(
        self,
        path: Path,
        dry_run: bool = False,
        control: JobControl | None = None,
        token_limit: TokenLimit | None = None,
    ) -> ImportReport:
        """Queue the valid facts of a file in one transaction and report every rejected row.

        A dry run does the same work and rolls it back. Raises `ImportFormatError` (and
        changes nothing) when the file is not a readable fact file.
        """
        control = control or silent()
        path = Path(path)
        with FactFile(path, token_limit) as source:
            report = ImportReport(path, source.format, dry_run=dry_run)
            self._db.begin()
            try:
                _FactImport(self, source, report, control).run()
            except BaseException:
                self._db.rollback()
                raise
            if dry_run:
                self._db.rollback()
            else:
                self._db.commit()
            report.warnings = source.warnings
        report.rejected.sort(key=lambda row: row.line)
        log.info("imported %d facts from %s (%s), rejected %d", report.imported, path, report.format, len(report.rejected))
        return report

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
        """Record a finished batch together with the state file it produced.

        `write_state` writes the edited state to the path it is given; pass None only when no
        fact was applied (the model is unchanged). The state file is made durable before the
        single transaction that records the batch, its facts' outcomes and the evaluations.
        `before` maps fact ids to (P(target_new), P(target_true)) measured just before the batch.
        """
        fact_ids = [o.request.fact_id for o in outcomes]
        if not outcomes or None in fact_ids or len(set(fact_ids)) != len(fact_ids):
            raise ProjectError("a batch needs at least one fact, each from this log and named once")
        for fact_id in fact_ids:
            self._require_status(fact_id, {"queued"}, "run")  # type: ignore[arg-type]
        applied = sum(o.applied for o in outcomes)
        if applied and write_state is None:
            raise ProjectError("a batch that applied facts must write its state")
        outcome = "applied" if applied == len(outcomes) else "partial" if applied else "failed"
        state = self._write_state(write_state) if write_state else None
        try:
            with self._db.atomic():
                batch_id = self._db.execute(
                    "INSERT INTO batches (method, hparams, started_at, finished_at, duration_s, outcome, metrics) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [method, json.dumps(dict(hparams), sort_keys=True, default=str), _iso(started), _iso(finished),
                     (finished - started).total_seconds(), outcome, json.dumps(dict(metrics or {}), default=str)],
                ).lastrowid
                if state:
                    self._record_state(state, "batch", batch_id)
                    self._db.execute("UPDATE batches SET state_id = ? WHERE id = ?", [state.id, batch_id])
                self._db.conn.executemany(
                    "INSERT INTO batch_facts (batch_id, fact_id, applied, reason, distance_before, distance_after, "
                    "prob_new_before, prob_true_before) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [(batch_id, o.request.fact_id, o.applied, o.reason, o.distance_before, o.distance_after,
                      *(before or {}).get(o.request.fact_id, (None, None))) for o in outcomes],
                )
                self._db.conn.executemany(
                    "UPDATE facts SET status = ?, batch_id = ?, reason = ? WHERE id = ?",
                    [("applied" if o.applied else "failed", batch_id, o.reason, o.request.fact_id) for o in outcomes],
                )
                self._insert_evaluations(batch_id, evaluations)
        except BaseException:
            if state:
                (self.state_dir / state.file_name).unlink(missing_ok=True)
            raise
        return self.batch(batch_id)

    def undo_last_batch(self, write_state: WriteState | None) -> Batch:
        """Undo the newest batch still in effect: its applied facts become 'undone'.

        `write_state` writes the state as it was before that batch; None only when the batch
        left the model unchanged. Same crash protocol as `commit_batch`.
        """
        row = self._db.execute("SELECT id, state_id FROM batches WHERE undone_at IS NULL ORDER BY id DESC LIMIT 1").fetchone()
        if row is None:
            raise ProjectError("there is no batch to undo")
        batch_id, batch_state = row
        if batch_state is not None and write_state is None:
            raise ProjectError(f"batch {batch_id} changed the model; undoing it must write the restored state")
        state = self._write_state(write_state) if write_state else None
        try:
            with self._db.atomic():
                if state:
                    self._record_state(state, "undo", batch_id)
                self._db.execute(
                    "UPDATE batches SET undone_at = ?, undo_state_id = ? WHERE id = ?",
                    [_now(), state.id if state else None, batch_id],
                )
                self._db.execute("UPDATE facts SET status = 'undone' WHERE batch_id = ? AND status = 'applied'", [batch_id])
        except BaseException:
            if state:
                (self.state_dir / state.file_name).unlink(missing_ok=True)
            raise
        return self.batch(batch_id)

    def current_state(self) -> StateFile | None:
        """The state the edited model is in: the newest state file the log names (None: the base model)."""
        rows = list(self._db.query("SELECT * FROM state_files ORDER BY id DESC LIMIT 1"))
        return self._state_record(rows[0]) if rows else None

    def state_files(self) -> list[StateFile]:
        """Every state file the log names, oldest first."""
        return [self._state_record(r) for r in self._db.query("SELECT * FROM state_files ORDER BY id")]

    def current_state_file(self) -> Path | None:
        """Path of the current state file (None: the base model); raises if the file went missing."""
        state = self.current_state()
        if state is None:
            return None
        if not state.path.is_file():
            raise ProjectError(f"the project's current state file {state.path} is missing")
        return state.path

    def verify_current_state(self) -> None:
        """Raise `ProjectError` unless the current state file has the checksum the log recorded."""
        state = self.current_state()
        if state is not None and sha256_file(self.current_state_file()) != state.sha256:  # type: ignore[arg-type]
            raise ProjectError(f"the state file {state.path} was changed outside NSE Studio (checksum differs)")

    def _write_state(self, write_state: WriteState) -> _NewState:
        """Write a new state file under a fresh name, durably, before anything records it."""
        state_id = self._db.execute("SELECT coalesce(max(id), 0) + 1 FROM state_files").fetchone()[0]
        name = f"state-{state_id:06d}{STATE_SUFFIX}"
        self.state_dir.mkdir(exist_ok=True)
        with atomic_path(self.state_dir / name) as tmp:
            write_state(tmp)
        return _NewState(state_id, name, sha256_file(self.state_dir / name))

    def _record_state(self, state: _NewState, kind: str, batch_id: int) -> None:
        self._db.execute(
            "INSERT INTO state_files (id, file_name, sha256, kind, batch_id, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            [*state, kind, batch_id, _now()],
        )

    def _insert_evaluations(self, batch_id: int, evaluations: Sequence[FactEvaluation]) -> None:
        self._db.conn.executemany(
            "INSERT INTO evaluations (batch_id, fact_id, retained, prob_new, prob_true) VALUES (?, ?, ?, ?, ?)",
            [(batch_id, e.fact_id, bool(e.retained), e.prob_new, e.prob_true) for e in evaluations],
        )

    # -- chats -------------------------------------------------------------------------------

    def record_chat(self, prompt: str, answer: str) -> Chat:
        """Keep a chat turn, tied to the batch in effect now (None: the base model)."""
        batch = self._db.execute("SELECT max(id) FROM batches WHERE undone_at IS NULL").fetchone()[0]
        created = _now()
        chat_id = self._db.execute(
            "INSERT INTO chats (prompt, answer, batch_id, created_at) VALUES (?, ?, ?, ?)", [prompt, answer, batch, created]
        ).lastrowid
        return Chat(chat_id, prompt, answer, batch, created)

    def chats(self) -> list[Chat]:
        return [Chat(**row) for row in self._db.query("SELECT id, prompt, answer, batch_id, created_at FROM chats ORDER BY id")]

    # -- reading the log ---------------------------------------------------------------------

    def fact(self, fact_id: int) -> Fact:
        found = self._select_facts("WHERE id = ?", [fact_id], "")
        if not found:
            raise ProjectError(f"there is no fact {fact_id} in this project")
        return found[0]

    def facts(self, status: str | None = None, search: str | None = None, limit: int | None = None, offset: int = 0) -> list[Fact]:
        """Facts in log order, optionally of one status and containing `search` in any text field."""
        where, params = _fact_filter(status, search)
        page = f"LIMIT {int(limit)} OFFSET {int(offset)}" if limit is not None else ""
        return self._select_facts(where, params, f"ORDER BY id {page}")

    def count_facts(self, status: str | None = None, search: str | None = None) -> int:
        where, params = _fact_filter(status, search)
        return self._db.execute(f"SELECT count(*) FROM facts {where}", params).fetchone()[0]

    def batch(self, batch_id: int) -> Batch:
        found = self._select_batches("WHERE b.id = ?", [batch_id])
        if not found:
            raise ProjectError(f"there is no batch {batch_id} in this project")
        return found[0]

    def batches(self, include_undone: bool = True) -> list[Batch]:
        return self._select_batches("" if include_undone else "WHERE b.undone_at IS NULL", [])

    def evaluations(
        self,
        batch_id: int | None = None,
        fact_id: int | None = None,
        first_batch: int | None = None,
        last_batch: int | None = None,
    ) -> list[Evaluation]:
        """Evaluation rows, filtered by batch, fact, or a range of batches."""
        conditions, params = [], []
        for sql, value in (("batch_id = ?", batch_id), ("fact_id = ?", fact_id),
                           ("batch_id >= ?", first_batch), ("batch_id <= ?", last_batch)):
            if value is not None:
                conditions.append(sql)
                params.append(value)
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        return [
            Evaluation(r["batch_id"], r["fact_id"], bool(r["retained"]), r["prob_new"], r["prob_true"])
            for r in self._db.query(f"SELECT * FROM evaluations {where} ORDER BY batch_id, fact_id", params)
        ]

    def probabilities_before(self) -> dict[int, tuple[float | None, float | None]]:
        """Per fact: (P(target_new), P(target_true)) just before the newest batch that ran it."""
        return {
            r["fact_id"]: (r["prob_new_before"], r["prob_true_before"])
            for r in self._db.query("SELECT fact_id, prob_new_before, prob_true_before FROM batch_facts ORDER BY batch_id")
        }

    def retention_series(self, first_batch: int | None = None, last_batch: int | None = None) -> list[RetentionPoint]:
        """Per batch in effect: edits applied so far, and how many earlier edits it still keeps.

        Undone batches and their edits are left out; 'earlier' means applied by a batch before
        this one that is still in effect.
        """
        retained = {
            r["batch_id"]: (r["evaluated"], r["retained"])
            for r in self._db.query(
                """
                WITH in_effect AS (SELECT bf.fact_id, bf.batch_id FROM batch_facts bf
                                   JOIN batches b ON b.id = bf.batch_id
                                   WHERE bf.applied AND b.undone_at IS NULL)
                SELECT e.batch_id, count(*) AS evaluated, sum(e.retained) AS retained
                FROM evaluations e JOIN in_effect a ON a.fact_id = e.fact_id AND a.batch_id < e.batch_id
                GROUP BY e.batch_id
                """
            )
        }
        points, applied_so_far = [], 0
        for batch in self.batches(include_undone=False):
            applied_so_far += batch.applied_count
            if (first_batch is None or batch.id >= first_batch) and (last_batch is None or batch.id <= last_batch):
                evaluated, kept = retained.get(batch.id, (0, 0))
                points.append(RetentionPoint(batch.id, applied_so_far, evaluated, kept))
        return points

    # -- helpers -----------------------------------------------------------------------------

    def _select_facts(self, where: str, params: Sequence[object], order: str) -> list[Fact]:
        return [_fact_record(r) for r in self._db.query(f"SELECT {_FACT_COLUMNS} FROM facts {where} {order}", params)]

    def _select_batches(self, where: str, params: Sequence[object]) -> list[Batch]:
        rows = self._db.query(
            f"""
            SELECT b.*, s.file_name AS state_file, s.sha256 AS state_sha256,
                   (SELECT group_concat(fact_id) FROM batch_facts WHERE batch_id = b.id) AS fact_ids,
                   (SELECT count(*) FROM batch_facts WHERE batch_id = b.id AND applied) AS applied_count
            FROM batches b LEFT JOIN state_files s ON s.id = b.state_id {where} ORDER BY b.id
            """,
            params,
        )
        return [
            Batch(
                id=r["id"], method=r["method"], hparams=json.loads(r["hparams"]), started_at=r["started_at"],
                finished_at=r["finished_at"], duration_s=r["duration_s"], outcome=r["outcome"],
                fact_ids=tuple(int(i) for i in (r["fact_ids"] or "").split(",") if i),
                applied_count=r["applied_count"], state_file=r["state_file"], state_sha256=r["state_sha256"],
                undone_at=r["undone_at"], metrics=json.loads(r["metrics"] or "{}"),
            )
            for r in rows
        ]

    def _state_record(self, row: dict) -> StateFile:
        return StateFile(row["id"], self.state_dir / row["file_name"], row["sha256"], row["kind"], row["batch_id"], row["created_at"])

    def _require_status(self, fact_id: int, allowed: set[str], action: str) -> None:
        row = self._db.execute("SELECT status FROM facts WHERE id = ?", [fact_id]).fetchone()
        if row is None:
            raise ProjectError(f"there is no fact {fact_id} in this project")
        if row[0] not in allowed:
            raise ProjectError(f"fact {fact_id} is {row[0]}; only {' or '.join(sorted(allowed))} facts can {action}")

    def _queued_keys(self) -> dict[tuple[str, str], tuple[int, str]]:
        """(subject, prompt) of each queued fact -> (fact id, target_new)."""
        rows = self._db.execute("SELECT subject, prompt, id, target_new FROM facts WHERE status = 'queued'")
        return {(s, p): (i, t) for s, p, i, t in rows}

    def _next_fact_slot(self) -> tuple[int, int]:
        """The next free fact id and queue position."""
        return self._db.execute("SELECT coalesce(max(id), 0) + 1, coalesce(max(position), 0) + 1 FROM facts").fetchone()


class _FactImport:
    """One import run inside an open transaction: validates, de-duplicates and inserts rows."""

    def __init__(self, project: Project, source: FactFile, report: ImportReport, control: JobControl) -> None:
        self.project = project
        self.source = source
        self.source_file = str(source.path.resolve())
        self.report = report
        self.control = control
        self.queued = project._queued_keys()
        self.seen: dict[tuple[str, str], _SeenRow] = {}
        self.pending: list[tuple] = []
        self.next_id, self.next_position = project._next_fact_slot()
        self.created_at = _now()

    def run(self) -> None:
        total = self.source.total_bytes
        self.control.report(IMPORT_PHASE, 0, total)
        for record in self.source.records:
            self.report.rows_read += 1
            self.report.trimmed_rows += record.trimmed
            self.add(record)
            if self.report.rows_read % _IMPORT_CHUNK == 0:
                self.flush()
                self.control.report(IMPORT_PHASE, self.source.bytes_read, total, f"{self.report.rows_read:,} rows")
        self.flush()
        self.control.report(IMPORT_PHASE, total, total, f"{self.report.rows_read:,} rows")

    def add(self, record: SourceRecord) -> None:
        request = record.request
        if request is None:
            self.reject(record.line, record.problems, record.fields)
            return
        key = (request.subject, request.prompt)
        problems = _duplicate_problems(key, request.target_new, self.queued)
        earlier = self.seen.get(key)
        if earlier is not None:
            if earlier.conflicting or earlier.target_new != request.target_new:
                problems.append(FactProblem(
                    "target_new", "conflict",
                    f"line {earlier.line} asks for {earlier.target_new!r} for the same subject and prompt; keep one",
                ))
                self.withdraw(earlier, record.line, request.target_new)
            else:
                problems.append(FactProblem("prompt", "duplicate", f"duplicate of line {earlier.line}"))
        if problems:
            self.reject(record.line, [FactProblem(p.field, p.code, p.message, record.line) for p in problems], record.fields)
            return
        fact_id = self.next_id
        self.next_id += 1
        self.seen[key] = _SeenRow(record.line, request.target_new, fact_id)
        self.pending.append(_fact_row(fact_id, self.next_position, request, self.source_file, record.line, self.created_at))
        self.next_position += 1
        self.report.imported_ids.append(fact_id)

    def withdraw(self, earlier: _SeenRow, line: int, target: str) -> None:
        """Take back an already accepted row that a later row contradicts."""
        if earlier.conflicting:
            return
        earlier.conflicting = True
        self.flush()
        fact = self.project.fact(earlier.fact_id)
        self.project._db.execute("DELETE FROM facts WHERE id = ?", [earlier.fact_id])
        self.report.imported_ids.remove(earlier.fact_id)
        problem = FactProblem("target_new", "conflict", f"line {line} asks for {target!r} for the same subject and prompt; keep one", earlier.line)
        self.reject(earlier.line, [problem], fields_of(fact.request))

    def reject(self, line: int, problems: list[FactProblem], fields: dict[str, str]) -> None:
        self.report.rejected.append(RejectedRow(line, problems, fields))

    def flush(self) -> None:
        if self.pending:
            self.project._db.conn.executemany(_INSERT_FACT, self.pending)
            self.pending.clear()


class _NewState(NamedTuple):
    id: int
    file_name: str
    sha256: str


class _SeenRow:
    __slots__ = ("line", "target_new", "fact_id", "conflicting")

    def __init__(self, line: int, target_new: str, fact_id: int) -> None:
        self.line = line
        self.target_new = target_new
        self.fact_id = fact_id
        self.conflicting = False


def _duplicate_problems(
    key: tuple[str, str], target_new: str, queued: Mapping[tuple[str, str], tuple[int, str]]
) -> list[FactProblem]:
    if key not in queued:
        return []
    fact_id, queued_target = queued[key]
    if queued_target == target_new:
        return [FactProblem("prompt", "duplicate", f"duplicate of queued fact {fact_id}")]
    return [FactProblem(
        "target_new", "duplicate",
        f"queued fact {fact_id} already asks for {queued_target!r} for this subject and prompt; edit or remove it first",
    )]


def _rebuild(request: EditRequest) -> tuple[EditRequest | None, list[FactProblem]]:
    """The request as the log stores it (template prompt, trimmed values), or its problems."""
    return build_fact(
        request.subject, request.prompt, request.target_new, request.target_true, request.paraphrases,
        ((n.prompt, n.target) for n in request.neighborhood), request.relation,
    )


def _fact_row(fact_id: int, position: int, r: EditRequest, source_file: str | None, source_line: int | None, created: str) -> tuple:
    return (
        fact_id, r.subject, r.prompt, r.target_new, r.target_true,
        _to_json(list(r.paraphrases)),
        _to_json([{"prompt": n.prompt, "target": n.target} for n in r.neighborhood]),
        r.relation, source_file, source_line, created, position,
    )


def _fact_record(r: dict) -> Fact:
    request = EditRequest(
        subject=r["subject"], prompt=r["prompt"], target_new=r["target_new"], target_true=r["target_true"],
        paraphrases=tuple(json.loads(r["paraphrases"])),
        neighborhood=tuple(NeighborhoodCheck(n["prompt"], n["target"]) for n in json.loads(r["neighborhood"])),
        relation=r["relation"], fact_id=r["id"],
    )
    return Fact(request, r["status"], r["position"], r["source_file"], r["source_line"], r["created_at"], r["batch_id"], r["reason"])


def _fact_filter(status: str | None, search: str | None) -> tuple[str, list[object]]:
    conditions: list[str] = []
    params: list[object] = []
    if status is not None:
        if status not in schema.FACT_STATUSES:
            raise ProjectError(f"unknown status {status!r}; use one of {', '.join(schema.FACT_STATUSES)}")
        conditions.append("status = ?")
        params.append(status)
    if search:
        pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conditions.append(
            "(" + " OR ".join(f"{c} LIKE ? ESCAPE '\\'" for c in ("subject", "prompt", "target_new", "target_true", "relation")) + ")"
        )
        params += [pattern] * 5
    return (f"WHERE {' AND '.join(conditions)}" if conditions else ""), params


def _connect(path: Path) -> Database:
    """A connection with WAL, enforced foreign keys and durable commits."""
    try:
        db = Database(path)
        db.execute("PRAGMA foreign_keys = ON")
        db.enable_wal()
        db.execute("PRAGMA synchronous = FULL")
    except sqlite3.DatabaseError as exc:
        raise ProjectError(f"{path} is not a readable project log: {exc}") from None
    return db


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.astimezone()
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds")
