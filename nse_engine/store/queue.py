"""The queue of facts waiting for a batch: add, edit, remove, reorder, requeue, retry what did not hold."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

from nse_engine.errors import ProjectError
from nse_engine.fact_files.validation import FactProblem, InvalidFactError
from nse_engine.facts import EditRequest
from nse_engine.progress import JobControl
from nse_engine.store.database import now
from nse_engine.store.fact_import import ImportOptions, import_facts
from nse_engine.store.fact_rows import INSERT_FACT, duplicate_problems, fact_row, normalised
from nse_engine.store.import_report import ImportReport
from nse_engine.store.log_part import LogPart, changes, reads
from nse_engine.store.records import Retry
from nse_engine.store.storage_errors import storage_errors


class FactQueue(LogPart):
    """Changes to queued facts; each call is one transaction, and invalid input changes nothing."""

    @reads
    def queued_facts(self) -> list[EditRequest]:
        """The queue in run order; each request carries its `fact_id`."""
        return [f.request for f in self._queries.queued_facts()]

    @changes("queue facts")
    def queue_facts(self, requests: Iterable[EditRequest], source_file: str | None = None) -> list[int]:
        """Append facts to the queue, all or none; raises `InvalidFactError` naming each problem."""
        problems: list[FactProblem] = []
        built: list[EditRequest] = []
        queued = self._queries.queued_keys()
        seen: dict[tuple[str, str], int] = {}
        for index, request in enumerate(requests, start=1):
            fact, found = normalised(request)
            if fact is not None:
                key = (fact.subject, fact.prompt)
                found = duplicate_problems(key, fact.target_new, queued)
                if key in seen:
                    found.append(FactProblem("prompt", "duplicate", f"same subject and prompt as fact {seen[key]} of this list"))
                seen.setdefault(key, index)
                built.append(fact)
            problems += [FactProblem(p.field, p.code, f"fact {index}: {p.message}") for p in found]
        if problems:
            raise InvalidFactError(problems)
        with self._db.atomic():
            next_id, next_position = self._queries.next_fact_slot()
            rows = [
                fact_row(next_id + i, next_position + i, fact, source_file, None, now())
                for i, fact in enumerate(built)
            ]
            self._db.conn.executemany(INSERT_FACT, rows)
        return [row[0] for row in rows]

    @changes("change the fact")
    def update_fact(self, fact_id: int, request: EditRequest) -> EditRequest:
        """Replace a queued fact's contents (the GUI's edit form)."""
        self._queries.require_status(fact_id, {"queued"}, "edit")
        fact, problems = normalised(request)
        if fact is not None:
            others = {k: v for k, v in self._queries.queued_keys().items() if v[0] != fact_id}
            problems = duplicate_problems((fact.subject, fact.prompt), fact.target_new, others)
        if problems:
            raise InvalidFactError(problems)
        row = fact_row(fact_id, 0, fact, None, None, "")  # type: ignore[arg-type]
        self._db.execute(
            "UPDATE facts SET subject = ?, prompt = ?, target_new = ?, target_true = ?, paraphrases = ?, "
            "neighborhood = ?, relation = ?, questions = ? WHERE id = ?",
            [*row[1:8], row[-1], fact_id],
        )
        return self._queries.fact(fact_id).request

    @changes("remove the fact")
    def remove_fact(self, fact_id: int) -> None:
        """Delete a queued fact that never ran (a fact that ran stays, as part of its batch's record)."""
        self._queries.require_status(fact_id, {"queued"}, "remove")
        ran = self._db.execute("SELECT batch_id FROM batch_facts WHERE fact_id = ? LIMIT 1", [fact_id]).fetchone()
        if ran:
            raise ProjectError(f"fact {fact_id} ran in batch {ran[0]} and stays in its record; it can only be left unqueued")
        self._db.execute("DELETE FROM facts WHERE id = ?", [fact_id])

    @changes("reorder the queue")
    def reorder(self, fact_ids: Sequence[int]) -> None:
        """Set the run order of the queue; `fact_ids` must name every queued fact once."""
        queued = [r[0] for r in self._db.execute("SELECT id FROM facts WHERE status = 'queued'").fetchall()]
        if sorted(fact_ids) != sorted(queued):
            raise ProjectError("the new order must list every queued fact exactly once")
        with self._db.atomic():
            self._db.conn.executemany(
                "UPDATE facts SET position = ? WHERE id = ?", [(i, fid) for i, fid in enumerate(fact_ids, start=1)]
            )

    @changes("queue the facts again")
    def requeue(self, fact_ids: Iterable[int]) -> None:
        """Put failed or undone facts back at the end of the queue."""
        fact_ids = list(fact_ids)
        queued = self._queries.queued_keys()
        problems = []
        for fact_id in fact_ids:
            self._queries.require_status(fact_id, {"failed", "undone"}, "requeue")
            request = self._queries.fact(fact_id).request
            problems += duplicate_problems((request.subject, request.prompt), request.target_new, queued)
        if problems:
            raise InvalidFactError(problems)
        with self._db.atomic():
            _, position = self._queries.next_fact_slot()
            self._db.conn.executemany(
                "UPDATE facts SET status = 'queued', reason = NULL, position = ? WHERE id = ?",
                [(position + i, fid) for i, fid in enumerate(fact_ids)],
            )

    @changes("queue the facts that did not hold again")
    def requeue_not_held(self, batch_ids: Iterable[int]) -> list[Retry]:
        """Queue again, as copies at the end of the queue, the facts these batches applied that the
        model did not say when the batch ended, so that the next round edits them again.

        Left out: facts of undone batches, facts whose subject and prompt a later batch applied
        again, with this object (their retry ran; one that did not hold either is retried through
        its own batch) or with another (a correction must not be overwritten), and facts whose subject
        and prompt are queued with another object (that queued fact replaces them). A fact whose
        copy is queued already gets that copy back, so asking twice queues nothing twice.
        """
        ids = sorted(set(batch_ids))
        if not ids:
            return []
        rows = self._db.execute(
            f"""
            SELECT f.id, bf.batch_id FROM batch_facts bf
            JOIN facts f ON f.id = bf.fact_id AND f.batch_id = bf.batch_id
            JOIN batches b ON b.id = bf.batch_id
            WHERE bf.batch_id IN ({', '.join('?' * len(ids))}) AND bf.applied AND bf.held = 0
              AND f.status = 'applied' AND b.undone_at IS NULL
              AND NOT EXISTS (SELECT 1 FROM facts g WHERE g.subject = f.subject AND g.prompt = f.prompt
                              AND g.status = 'applied' AND g.batch_id > f.batch_id)
            ORDER BY f.id
            """,
            ids,
        ).fetchall()
        queued = self._queries.queued_keys()
        retries: list[Retry] = []
        with self._db.atomic():
            next_id, position = self._queries.next_fact_slot()
            for fact_id, batch_id in rows:
                fact = self._queries.fact(fact_id)
                key = (fact.request.subject, fact.request.prompt)
                if key in queued:
                    queued_id, target = queued[key]
                    if target == fact.request.target_new:
                        retries.append(Retry(fact_id, batch_id, queued_id, new=False))
                    continue
                self._db.execute(INSERT_FACT, fact_row(next_id, position, fact.request, fact.source_file,
                                                       fact.source_line, now()))
                queued[key] = (next_id, fact.request.target_new)
                retries.append(Retry(fact_id, batch_id, next_id, new=True))
                next_id, position = next_id + 1, position + 1
        return retries

    def import_facts(
        self, path: Path, options: ImportOptions = ImportOptions(), control: JobControl | None = None
    ) -> ImportReport:
        """Queue the valid facts of a file in one transaction and report every rejected row.

        Rows identical to a queued fact, or to an applied one (unless `options.reapply`), are skipped
        and reported as such. A dry run works on a read-only project too.
        """
        if not options.dry_run:
            self.require_writable("import facts")
        with storage_errors(self.log_path, "import the facts"):
            return import_facts(self._db, self._queries, path, options, control)
