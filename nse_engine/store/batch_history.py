"""Recording batches and their undo together with the state files they produce (the crash protocol).

The log and the state files never disagree, even if the process is killed at any moment: a new
state file is written under a fresh name (temporary file, fsync, rename) *before* the one
transaction that records it; the current state is the newest state file the log names (and no
rollback set aside). A crash can leave only the temporary files of a state write and the one state
file the log says it was writing (its name is put in the log before the write); the holder of the
project's write lock removes exactly those, and keeps every other file in `state/`. Every use of the current state checks it against the checksum
recorded with it (state_recovery.py says what to offer when that fails).
"""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime
from pathlib import Path
from typing import Mapping, NamedTuple, Sequence

from nse_engine.atomic import atomic_path, sha256_file, temporary_target
from nse_engine.errors import DamagedStateError, ProjectError
from nse_engine.facts import FactOutcome
from nse_engine.store.database import LOG_FILE, iso, now, read_meta, write_meta
from nse_engine.store.log_part import LogPart, changes, reads
from nse_engine.store.records import Batch, BatchMetrics, FactEvaluation, WriteState
from nse_engine.store.state_recovery import Recovery, find_recovery, state_problem
from nse_engine.store.storage_errors import storage_errors

log = logging.getLogger(__name__)

STATE_SUFFIX = ".safetensors"
NOT_RECORDED = "The batch was not recorded and the model is unchanged"
WRITING_STATE = "writing_state"  # meta key: the state file being written, until the log records it
_STATE_NAME = re.compile(r"state-(\d{6,})" + re.escape(STATE_SUFFIX))
_SAFETENSORS_TEMPORARY = re.compile(r"\.tmp[A-Za-z0-9]{6}")  # what safetensors writes first


def state_name(state_id: int) -> str:
    return f"state-{state_id:06d}{STATE_SUFFIX}"


def _temporary_state(name: str) -> bool:
    """A temporary file of a state write: atomic_path's `.NAME.tmp-PID` for a state name (nested:
    the state writer takes one too), or the one safetensors writes first."""
    if _SAFETENSORS_TEMPORARY.fullmatch(name):
        return True
    target = temporary_target(name)
    while target is not None and not _STATE_NAME.fullmatch(target):
        target = temporary_target(target)
    return target is not None


def ensure_state_folder(state_dir: Path) -> None:
    """Create a project's `state/` folder, or say what to do when a file has its name."""
    if state_dir.exists() and not state_dir.is_dir():
        raise ProjectError(f"{state_dir} is a file, but the project keeps its editing states in a folder of that "
                           "name; rename or move that file, then try again")
    state_dir.mkdir(exist_ok=True)


def refuse_states_without_log(state_dir: Path) -> None:
    """A `state/` folder with files but no log is a project whose log was moved or deleted: a new
    project there would take its place (and its next open would not know those files)."""
    try:
        names = sorted(p.name for p in state_dir.iterdir()) if state_dir.is_dir() else []
    except OSError as exc:
        raise ProjectError(f"cannot read {state_dir}: {exc.strerror or exc}") from None
    if names:
        files = f"{len(names):,} file{'s' if len(names) > 1 else ''}"
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3:,} more" if len(names) > 3 else "")
        raise ProjectError(
            f"{state_dir.parent} holds no project log ({LOG_FILE}) but its {state_dir.name}/ folder holds {files} "
            f"({shown}): the editing states of a project whose log was moved or deleted. Put {LOG_FILE} back "
            "to open that project, or create the new project in another folder; nothing was changed."
        )


class _NewState(NamedTuple):
    id: int
    file_name: str
    sha256: str


class BatchHistory(LogPart):
    """Commits and undoes batches; the only writer of `batches`, `batch_facts`, `state_files`."""

    @changes("record the batch")
    def commit_batch(
        self,
        outcomes: Sequence[FactOutcome],
        method: str,
        hparams: Mapping[str, object],
        started: datetime,
        finished: datetime,
        write_state: WriteState | None,
        evaluations: Sequence[FactEvaluation] = (),
        metrics: BatchMetrics | None = None,
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
            self._queries.require_status(fact_id, {"queued"}, "run")  # type: ignore[arg-type]
        applied = sum(o.applied for o in outcomes)
        if applied and write_state is None:
            raise ProjectError("a batch that applied facts must write its state")
        outcome = "applied" if applied == len(outcomes) else "partial" if applied else "failed"
        state = self._write_state(write_state, NOT_RECORDED) if write_state else None
        try:
            with storage_errors(self.log_path, "record the batch", NOT_RECORDED), self._db.atomic():
                batch_id = self._db.execute(
                    "INSERT INTO batches (method, hparams, started_at, finished_at, duration_s, outcome, metrics) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [method, json.dumps(dict(hparams), sort_keys=True, default=str), iso(started), iso(finished),
                     (finished - started).total_seconds(), outcome,
                     json.dumps(metrics.to_dict() if metrics is not None else {}, default=str)],
                ).lastrowid
                if state:
                    self._record_state(state, "batch", batch_id)
                    self._db.execute("UPDATE batches SET state_id = ? WHERE id = ?", [state.id, batch_id])
                self._db.conn.executemany(
                    "INSERT INTO batch_facts (batch_id, fact_id, applied, reason, distance_before, distance_after, "
                    "prob_new_before, prob_true_before, continuation, held, extra_passes, chat_reply, completion_held, "
                    "chat_held) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(batch_id, o.request.fact_id, o.applied, o.reason, o.distance_before, o.distance_after,
                      *(before or {}).get(o.request.fact_id, (None, None)), o.continuation, o.held, o.extra_passes,
                      o.chat_reply, o.completion_held, o.chat_held)
                     for o in outcomes],
                )
                self._db.conn.executemany(
                    "UPDATE facts SET status = ?, batch_id = ?, reason = ? WHERE id = ?",
                    [("applied" if o.applied else "failed", batch_id, o.reason, o.request.fact_id) for o in outcomes],
                )
                self._db.conn.executemany(
                    "INSERT INTO evaluations (batch_id, fact_id, retained, prob_new, prob_true) VALUES (?, ?, ?, ?, ?)",
                    [(batch_id, e.fact_id, bool(e.retained), e.prob_new, e.prob_true) for e in evaluations],
                )
        except BaseException:
            if state:
                (self.state_dir / state.file_name).unlink(missing_ok=True)
            raise
        return self._queries.batch(batch_id)

    @changes("undo the batch")
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
        not_undone = f"Batch {batch_id} was not undone and the model is as before"
        state = self._write_state(write_state, not_undone) if write_state else None
        try:
            with storage_errors(self.log_path, "record the undo", not_undone), self._db.atomic():
                if state:
                    self._record_state(state, "undo", batch_id)
                self._db.execute(
                    "UPDATE batches SET undone_at = ?, undo_state_id = ? WHERE id = ?",
                    [now(), state.id if state else None, batch_id],
                )
                self._db.execute("UPDATE facts SET status = 'undone' WHERE batch_id = ? AND status = 'applied'", [batch_id])
        except BaseException:
            if state:
                (self.state_dir / state.file_name).unlink(missing_ok=True)
            raise
        return self._queries.batch(batch_id)

    @reads
    def current_state_file(self) -> Path | None:
        """Path of the current state file, checked against its recorded checksum (None: the base model).

        Raises `DamagedStateError`, naming the last good state, when it is missing or damaged.
        """
        state = self._queries.current_state()
        if state is None:
            return None
        self.verify_current_state()
        return state.path

    @reads
    def verify_current_state(self) -> None:
        """Raise `DamagedStateError` unless the current state file has the checksum the log recorded."""
        state = self._queries.current_state()
        if state is not None and state_problem(state) is not None:
            recovery = find_recovery(self._db, self._queries)
            raise DamagedStateError(recovery.describe(self.state_dir.parent) if recovery else f"{state.path} changed")

    @reads
    def recovery(self) -> Recovery | None:
        """How to go back to the last good state when the current one is damaged (None: it is intact)."""
        return find_recovery(self._db, self._queries)

    @changes("roll back to the last good state")
    def roll_back(self, discard_current: bool = False) -> Recovery | None:
        """Go back to the last good state: the batches it does not hold are recorded as undone and the
        newer state files are set aside (kept on disk). None when the current state is intact.

        `discard_current` sets aside a current state whose checksum matches but which was saved
        damaged (it restores NaN or infinite weights).
        """
        known_problem = "was saved damaged (it restores NaN or infinite weights)" if discard_current else None
        recovery = find_recovery(self._db, self._queries, known_problem)
        if recovery is None:
            return None
        good_id = recovery.good.id if recovery.good else 0
        with storage_errors(self.log_path, "record the rollback"), self._db.atomic():
            moment = now()
            self._db.execute("UPDATE state_files SET discarded_at = ? WHERE id > ? AND discarded_at IS NULL",
                             [moment, good_id])
            self._db.conn.executemany(
                "UPDATE batches SET undone_at = ?, undo_state_id = ? WHERE id = ?",
                [(moment, recovery.good.id if recovery.good else None, b) for b in recovery.undo_batch_ids],
            )
            self._db.conn.executemany(
                "UPDATE facts SET status = 'undone' WHERE batch_id = ? AND status = 'applied'",
                [(b,) for b in recovery.undo_batch_ids],
            )
        log.warning("rolled back %s to %s", recovery.damaged.path, recovery.good.path if recovery.good else "the base model")
        return recovery

    def remove_orphan_states(self) -> None:
        """Delete what a run killed before its commit left in `state/`, and nothing else.

        That is a temporary file of `atomic_path` for a state name, and the one state file the log
        says it was about to write (`WRITING_STATE`, set before the write and cleared by the commit)
        if the log does not name it. Any other file is kept, with a warning: a renamed state,
        notes, or the states of a log that was put back or replaced. No file time is consulted
        (ctime is the creation time on Windows).
        """
        named = {row["file_name"] for row in self._db.query("SELECT file_name FROM state_files")}
        writing = read_meta(self._db, WRITING_STATE)
        for path in sorted(self.state_dir.iterdir()):
            if path.name in named or not path.is_file():
                continue
            if _temporary_state(path.name):
                log.warning("removing %s: a state file half-written by an interrupted run", path)
                path.unlink()
            elif path.name == writing:
                log.warning("removing %s: written by a run interrupted before the log recorded it", path)
                path.unlink()
            elif _STATE_NAME.fullmatch(path.name):
                log.warning("keeping %s: the log of %s does not name it and did not write it; "
                            "move it out of %s if it is not needed", path, self.state_dir.parent, self.state_dir)
        if writing is not None:
            with storage_errors(self.log_path, "clean up after an interrupted run"), self._db.atomic():
                write_meta(self._db, WRITING_STATE, None)

    def _write_state(self, write_state: WriteState, not_recorded: str) -> _NewState:
        """Write a new state file under a fresh name, durably, before anything records it.

        The id is the next after the log's, skipping names taken by files the log does not name
        (kept by `remove_orphan_states`), so no file in `state/` is ever written over. The name is
        put in the log first (`WRITING_STATE`): a crash before the commit leaves a file the next
        open knows it may delete.
        """
        state_id = self._db.execute("SELECT coalesce(max(id), 0) + 1 FROM state_files").fetchone()[0]
        with storage_errors(self.state_dir, "save the edited state", not_recorded):
            ensure_state_folder(self.state_dir)
            while (self.state_dir / state_name(state_id)).exists():
                state_id += 1
            name = state_name(state_id)
            with storage_errors(self.log_path, "save the edited state", not_recorded), self._db.atomic():
                write_meta(self._db, WRITING_STATE, name)
            with atomic_path(self.state_dir / name) as tmp:
                write_state(tmp)
            return _NewState(state_id, name, sha256_file(self.state_dir / name))

    def _record_state(self, state: _NewState, kind: str, batch_id: int) -> None:
        self._db.execute(
            "INSERT INTO state_files (id, file_name, sha256, kind, batch_id, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            [*state, kind, batch_id, now()],
        )
        write_meta(self._db, WRITING_STATE, None)  # in the recording transaction: the file is the log's now
