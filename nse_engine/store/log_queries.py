"""Reading the edit log: facts, batches, evaluations, state files, chats and retention series."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Collection, Sequence

from sqlite_utils import Database

from nse_engine.errors import ProjectError
from nse_engine.store.database import LOG_FILE
from nse_engine.store.fact_rows import FACT_COLUMNS, QueuedKeys, fact_filter, fact_record
from nse_engine.store.log_rows import LogRow, RetentionRow, first_round_retention
from nse_engine.store.records import (
    Batch, BatchMetrics, Chat, Evaluation, Fact, StateFile, WrittenOutcome, WrittenShare,
)
from nse_engine.store.storage_errors import guard_reads


_APPLIED_IN_EFFECT = "batch_facts bf JOIN batches b ON b.id = bf.batch_id WHERE bf.applied AND b.undone_at IS NULL"


@guard_reads(lambda queries: queries.state_dir.parent / LOG_FILE)
class LogQueries:
    """Read-only queries over one project's log; every record returned is detached from SQLite."""

    def __init__(self, db: Database, state_dir: Path) -> None:
        self._db = db
        self.state_dir = state_dir

    # -- facts -------------------------------------------------------------------------------

    def fact(self, fact_id: int) -> Fact:
        found = self._select_facts("WHERE id = ?", [fact_id], "")
        if not found:
            raise ProjectError(f"there is no fact {fact_id} in this project")
        return found[0]

    def facts(self, status: str | None = None, search: str | None = None, limit: int | None = None, offset: int = 0) -> list[Fact]:
        """Facts in log order, optionally of one status and containing `search` in any text field."""
        where, params = fact_filter(status, search)
        page = f"LIMIT {int(limit)} OFFSET {int(offset)}" if limit is not None else ""
        return self._select_facts(where, params, f"ORDER BY id {page}")

    def queued_facts(self) -> list[Fact]:
        """The queue in run order."""
        return self._select_facts("WHERE status = 'queued'", [], "ORDER BY position, id")

    def count_facts(self, status: str | None = None, search: str | None = None) -> int:
        where, params = fact_filter(status, search)
        return self._db.execute(f"SELECT count(*) FROM facts {where}", params).fetchone()[0]

    def queued_keys(self) -> QueuedKeys:
        rows = self._db.execute("SELECT subject, prompt, id, target_new FROM facts WHERE status = 'queued'")
        return {(s, p): (i, t) for s, p, i, t in rows}

    def applied_keys(self) -> dict[tuple[str, str, str], tuple[int, int]]:
        """(subject, prompt, target_new) of each applied fact -> (fact id, the batch that applied it)."""
        rows = self._db.execute("SELECT subject, prompt, target_new, id, batch_id FROM facts WHERE status = 'applied'")
        return {(s, p, t): (i, b) for s, p, t, i, b in rows}

    def next_fact_slot(self) -> tuple[int, int]:
        """The next free fact id and queue position."""
        return self._db.execute("SELECT coalesce(max(id), 0) + 1, coalesce(max(position), 0) + 1 FROM facts").fetchone()

    def require_status(self, fact_id: int, allowed: set[str], action: str) -> None:
        row = self._db.execute("SELECT status FROM facts WHERE id = ?", [fact_id]).fetchone()
        if row is None:
            raise ProjectError(f"there is no fact {fact_id} in this project")
        if row[0] not in allowed:
            raise ProjectError(f"fact {fact_id} is {row[0]}; only {' or '.join(sorted(allowed))} facts can {action}")

    # -- batches and evaluations -------------------------------------------------------------

    def batch(self, batch_id: int) -> Batch:
        found = self._select_batches("WHERE b.id = ?", [batch_id])
        if not found:
            raise ProjectError(f"there is no batch {batch_id} in this project")
        return found[0]

    def batches(self, include_undone: bool = True) -> list[Batch]:
        return self._select_batches("" if include_undone else "WHERE b.undone_at IS NULL", [])

    def newest_batch_in_effect(self) -> int | None:
        """The id of the newest batch not undone (None: the model is the base model)."""
        return self._db.execute("SELECT max(id) FROM batches WHERE undone_at IS NULL").fetchone()[0]

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

    def written_outcomes(self) -> dict[int, WrittenOutcome]:
        """Per fact: what the model wrote after its prompt when the newest batch in effect that ran
        it ended (an undone batch's verdict no longer describes the model)."""
        def flag(value: int | None) -> bool | None:
            return None if value is None else bool(value)

        return {
            r["fact_id"]: WrittenOutcome(r["continuation"], flag(r["held"]), r["extra_passes"], r["chat_reply"],
                                         flag(r["completion_held"]), flag(r["chat_held"]))
            for r in self._db.query(
                "SELECT bf.fact_id, bf.continuation, bf.held, bf.extra_passes, bf.chat_reply, bf.completion_held, "
                "bf.chat_held FROM batch_facts bf "
                "JOIN batches b ON b.id = bf.batch_id WHERE b.undone_at IS NULL ORDER BY bf.batch_id"
            )
        }

    def written_shares(self) -> dict[int, WrittenShare]:
        """Per batch: of the facts it applied, how many the model said at the end of its round.

        Batches that checked nothing (logged before every round checked) are left out.
        """
        return {
            r["batch_id"]: WrittenShare(r["batch_id"], r["checked"], r["said"])
            for r in self._db.query(
                "SELECT batch_id, count(*) AS checked, sum(held) AS said FROM batch_facts "
                "WHERE held IS NOT NULL AND applied GROUP BY batch_id"
            )
        }

    # -- what the Log and Retention screens show ---------------------------------------------

    def log_rows(
        self, status: str | None = None, search: str | None = None, fact_ids: Collection[int] | None = None
    ) -> list[LogRow]:
        """Facts in log order (of one status, containing `search`, among `fact_ids`, as asked) with
        their probabilities just before and after their own batch and, for facts in effect, at the
        newest measurement of a batch in effect (an undone fact has no "now" and no retention)."""
        where, params = fact_filter(status, search)
        if fact_ids is not None:
            ids = sorted(set(fact_ids))
            if not ids:
                return []
            where = f"{where} {'AND' if where else 'WHERE'} id IN ({', '.join('?' * len(ids))})"
            params = [*params, *ids]
        facts = self._select_facts(where, params, "ORDER BY id")
        before = self.probabilities_before()
        written = self.written_outcomes()
        history: dict[int, list[Evaluation]] = {}
        for evaluation in self.evaluations():
            history.setdefault(evaluation.fact_id, []).append(evaluation)
        in_effect = {r[0] for r in self._db.execute("SELECT id FROM batches WHERE undone_at IS NULL")}
        rows = []
        for fact in facts:
            evals = history.get(fact.id, [])
            own = next((e for e in evals if e.batch_id == fact.batch_id), None)
            now = [e for e in evals if e.batch_id in in_effect] if fact.status == "applied" else []
            latest = now[-1] if now else None  # an undone batch's measurement no longer describes the model
            prob_new_before, prob_true_before = before.get(fact.id, (None, None))
            wrote = written.get(fact.id, WrittenOutcome(None, None, 0))
            rows.append(LogRow(
                request=fact.request, status=fact.status, batch_id=fact.batch_id, reason=fact.reason,
                source_file=fact.source_file, source_line=fact.source_line,
                prob_new_before=prob_new_before, prob_true_before=prob_true_before,
                prob_new_after=own.prob_new if own else None, prob_true_after=own.prob_true if own else None,
                prob_new_now=latest.prob_new if latest else None, prob_true_now=latest.prob_true if latest else None,
                retained=latest.retained if latest else None,
                continuation=wrote.continuation, held=wrote.held, extra_passes=wrote.extra_passes,
                chat_reply=wrote.chat_reply, completion_held=wrote.completion_held, chat_held=wrote.chat_held,
            ))
        return rows

    def retention_points(self) -> list[RetentionRow]:
        """Per batch in effect: edits applied so far, how many earlier edits it still keeps ('earlier':
        applied by a batch before this one that is still in effect; undone batches and their edits are
        left out), first-round retention over the edits measured after the batch, and its summary scores."""
        retained = self._earlier_retained()
        batches = self.batches(include_undone=False)
        in_effect = {b.id for b in batches}
        applied_by = {
            r["fact_id"]: r["batch_id"]
            for r in self._db.query(f"SELECT bf.fact_id, bf.batch_id FROM {_APPLIED_IN_EFFECT}")
        }
        measured: dict[int, list[tuple[int, bool]]] = {}
        for evaluation in self.evaluations():
            if evaluation.batch_id in in_effect and evaluation.fact_id in applied_by:
                measured.setdefault(evaluation.batch_id, []).append((applied_by[evaluation.fact_id], evaluation.retained))
        written = self.written_shares()
        points, applied_so_far = [], 0
        for batch in batches:
            applied_so_far += batch.applied_count
            evaluated, kept = retained.get(batch.id, (0, 0))
            points.append(_retention_row(batch, applied_so_far, evaluated, kept, measured.get(batch.id, ()),
                                         written.get(batch.id)))
        return points

    def retention_point(self, batch: Batch) -> RetentionRow:
        """`batch`'s point as `retention_points` gives it (a batch in effect), read for that batch
        only: what a batch reports costs the same however many batches came before it."""
        (edits_applied,) = self._db.execute(
            f"SELECT count(*) FROM {_APPLIED_IN_EFFECT} AND b.id <= ?", [batch.id]
        ).fetchone()
        measured = [(r["applied_by"], bool(r["retained"])) for r in self._db.query(
            f"SELECT e.retained, a.batch_id AS applied_by FROM evaluations e JOIN "
            f"(SELECT bf.fact_id, bf.batch_id FROM {_APPLIED_IN_EFFECT}) a ON a.fact_id = e.fact_id WHERE e.batch_id = ?",
            [batch.id],
        )]
        earlier = [kept for applied_by, kept in measured if applied_by < batch.id]
        checked, said = self._db.execute(
            "SELECT count(*), coalesce(sum(held), 0) FROM batch_facts WHERE held IS NOT NULL AND applied AND batch_id = ?",
            [batch.id],
        ).fetchone()
        return _retention_row(batch, edits_applied, len(earlier), sum(earlier), measured,
                              WrittenShare(batch.id, checked, said) if checked else None)

    def _earlier_retained(self) -> dict[int, tuple[int, int]]:
        """Per batch: (earlier edits in effect measured after it, how many of them the model still gave)."""
        return {
            r["batch_id"]: (r["evaluated"], r["retained"])
            for r in self._db.query(
                f"""
                WITH in_effect AS (SELECT bf.fact_id, bf.batch_id FROM {_APPLIED_IN_EFFECT})
                SELECT e.batch_id, count(*) AS evaluated, sum(e.retained) AS retained
                FROM evaluations e JOIN in_effect a ON a.fact_id = e.fact_id AND a.batch_id < e.batch_id
                GROUP BY e.batch_id
                """
            )
        }

    # -- state files and chats ---------------------------------------------------------------

    def current_state(self) -> StateFile | None:
        """The state the edited model is in: the newest state file the log names and no rollback set
        aside (None: the base model)."""
        rows = list(self._db.query("SELECT * FROM state_files WHERE discarded_at IS NULL ORDER BY id DESC LIMIT 1"))
        return self._state_record(rows[0]) if rows else None

    def state_files(self, include_discarded: bool = True) -> list[StateFile]:
        """Every state file the log names, oldest first."""
        where = "" if include_discarded else "WHERE discarded_at IS NULL"
        return [self._state_record(r) for r in self._db.query(f"SELECT * FROM state_files {where} ORDER BY id")]

    def chats(self) -> list[Chat]:
        return [Chat(**row) for row in self._db.query("SELECT id, prompt, answer, batch_id, created_at FROM chats ORDER BY id")]

    # -- helpers -----------------------------------------------------------------------------

    def _select_facts(self, where: str, params: Sequence[object], order: str) -> list[Fact]:
        return [fact_record(r) for r in self._db.query(f"SELECT {FACT_COLUMNS} FROM facts {where} {order}", params)]

    def _select_batches(self, where: str, params: Sequence[object]) -> list[Batch]:
        rows = self._db.query(
            f"""
            SELECT b.*, s.file_name AS state_file, s.sha256 AS state_sha256,
                   (SELECT group_concat(fact_id) FROM batch_facts WHERE batch_id = b.id) AS fact_ids,
                   (SELECT count(*) FROM batch_facts WHERE batch_id = b.id AND applied) AS applied_count,
                   (SELECT count(*) FROM batch_facts WHERE batch_id = b.id AND applied AND held = 0) AS not_held
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
                undone_at=r["undone_at"], metrics=BatchMetrics.from_dict(json.loads(r["metrics"] or "{}")),
                not_held=r["not_held"],
            )
            for r in rows
        ]

    def _state_record(self, row: dict) -> StateFile:
        return StateFile(row["id"], self.state_dir / row["file_name"], row["sha256"], row["kind"], row["batch_id"],
                         row["created_at"], row["discarded_at"] is not None)


def _retention_row(batch: Batch, edits_applied: int, evaluated: int, retained: int,
                   measured: Sequence[tuple[int, bool]], written: WrittenShare | None) -> RetentionRow:
    metrics = batch.metrics
    return RetentionRow(
        batch_id=batch.id, edits_applied=edits_applied, evaluated=evaluated, retained=retained,
        first_batch_share=first_round_retention(measured),
        efficacy=metrics.efficacy, generalization=metrics.generalization, specificity=metrics.specificity,
        fluency=metrics.fluency,
        says_new=written.share if written else None,
    )
