"""The log keeps, per fact, what the model wrote after its prompt when its batch ended."""

from datetime import datetime, timedelta, timezone

from nse_engine.facts import EditRequest, FactOutcome
from nse_engine.store import Project

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)


def test_written_outcomes_are_logged_per_fact_and_survive_reopening(tmp_path):
    folder = tmp_path / "project"
    with Project.create(folder, "default", "fp") as project:
        held, missed, unchecked = project.queue_facts([
            EditRequest("France", "The capital of {} is", "Rome", "Paris"),
            EditRequest("Germany", "The capital of {} is", "Madrid", "Berlin"),
            EditRequest("Italy", "The capital of {} is", "Oslo", "Rome"),
        ])
        requests = {r.fact_id: r for r in project.queued_facts()}
        outcomes = [
            FactOutcome(requests[held], True, continuation=" Rome, the city", held=True, extra_passes=1),
            FactOutcome(requests[missed], True, continuation=" Berlin.", held=False, extra_passes=3),
            FactOutcome(requests[unchecked], True),
        ]
        project.commit_batch(outcomes, "NSE", {}, T0, T0 + timedelta(seconds=1), lambda p: p.write_bytes(b"s"))
    with Project.open(folder) as project:
        written = project.written_outcomes()
    assert (written[held].continuation, written[held].held, written[held].extra_passes) == (" Rome, the city", True, 1)
    assert (written[missed].held, written[missed].extra_passes) == (False, 3)
    assert written[unchecked].held is None and written[unchecked].continuation is None
