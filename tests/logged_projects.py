"""Projects with a real log and no model: batches committed as a round would commit them, with
what the model wrote after each prompt, for tests of what the log screens read back."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from nse_engine.facts import EditRequest, FactOutcome
from nse_engine.store import BatchMetrics, FactEvaluation, Project

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)
COUNTRIES = ("France", "Germany", "Italy", "Spain", "Norway", "Chile")


def commit_said(project: Project, said: list[bool | None], earlier_kept: bool = True) -> None:
    """Queue and commit one batch of len(said) facts; said[i] is whether fact i's continuation said
    its new object (None: not checked); every earlier applied fact is measured as `earlier_kept`."""
    offset = len(project.queries.facts())
    requests = [EditRequest(COUNTRIES[(offset + i) % len(COUNTRIES)], f"Fact {offset + i} of {{}} is", "new", "old")
                for i in range(len(said))]
    ids = project.queue.queue_facts(requests)
    queued = {r.fact_id: r for r in project.queue.queued_facts()}
    outcomes = [FactOutcome(queued[i], True, continuation=None if s is None else (" new" if s else " old"), held=s)
                for i, s in zip(ids, said)]
    earlier = [FactEvaluation(f.id, earlier_kept) for f in project.queries.facts(status="applied")]
    project.history.commit_batch(outcomes, "MEMIT", {"norm_anchoring": True}, T0, T0 + timedelta(seconds=1),
                                 lambda p: p.write_bytes(b"state"), earlier, BatchMetrics(efficacy=1.0))


def logged_project(folder: Path, batches: list[list[bool | None]], method: str = "memit") -> Path:
    """A closed project in `folder` edited with `method`, one committed batch per entry of `batches`."""
    with Project.create(folder, "tiny", "fp") as project:
        project.meta.choose_method(method)
        for said in batches:
            commit_said(project, said)
    return folder
