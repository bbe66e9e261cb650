"""The log keeps, per fact, what the model wrote after its prompt when its batch ended; facts that
did not hold can be queued again."""

import sqlite3
from datetime import datetime, timedelta, timezone

from nse_engine.facts import EditRequest, FactOutcome
from nse_engine.store import Project
from nse_engine.store.log_rows import held_count
from nse_engine.store.project import LOG_FILE
from nse_engine.store.records import Retry

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)


def test_written_outcomes_are_logged_per_fact_and_survive_reopening(tmp_path):
    folder = tmp_path / "project"
    with Project.create(folder, "default", "fp") as project:
        held, missed, unchecked = project.queue.queue_facts([
            EditRequest("France", "The capital of {} is", "Rome", "Paris"),
            EditRequest("Germany", "The capital of {} is", "Madrid", "Berlin"),
            EditRequest("Italy", "The capital of {} is", "Oslo", "Rome"),
        ])
        requests = {r.fact_id: r for r in project.queue.queued_facts()}
        outcomes = [
            FactOutcome(requests[held], True, continuation=" Rome, the city", held=True, extra_passes=1),
            FactOutcome(requests[missed], True, continuation=" Berlin.", held=False, extra_passes=3),
            FactOutcome(requests[unchecked], True),
        ]
        project.history.commit_batch(outcomes, "NSE", {}, T0, T0 + timedelta(seconds=1), lambda p: p.write_bytes(b"s"))
    with Project.open(folder) as project:
        written = project.queries.written_outcomes()
    assert (written[held].continuation, written[held].held, written[held].extra_passes) == (" Rome, the city", True, 1)
    assert (written[missed].held, written[missed].extra_passes) == (False, 3)
    assert written[unchecked].held is None and written[unchecked].continuation is None


def _run_batch(project, outcomes_by_subject: dict[str, tuple[bool | None, int]], t: datetime):
    """Commit every queued fact as applied, with (held, extra passes) per subject."""
    outcomes = [FactOutcome(r, True, continuation=f" wrote about {r.subject}", held=held, extra_passes=extra)
                for r in project.queue.queued_facts() for held, extra in [outcomes_by_subject[r.subject]]]
    return project.history.commit_batch(outcomes, "NSE", {}, t, t + timedelta(seconds=1), lambda p: p.write_bytes(b"s"))


def test_log_rows_and_batches_say_what_held_and_retry_queues_copies_of_what_did_not(tmp_path):
    folder = tmp_path / "project"
    with Project.create(folder, "default", "fp") as project:
        project.queue.queue_facts([
            EditRequest("France", "The capital of {} is", "Rome", "Paris"),
            EditRequest("Germany", "The capital of {} is", "Madrid", "Berlin"),
            EditRequest("Italy", "The capital of {} is", "Oslo", "Rome"),
        ])
        first = _run_batch(project, {"France": (True, 0), "Germany": (False, 2), "Italy": (True, 1)}, T0)
    with Project.open(folder) as project:
        rows = {r.request.subject: r for r in project.queries.log_rows()}
        assert (rows["Germany"].held, rows["Germany"].extra_passes, rows["Germany"].continuation) == (
            False, 2, " wrote about Germany")
        assert [r.not_held for r in rows.values()] == [False, True, False]
        assert str(held_count(rows.values())) == "held 2/3 (1 after extra passes)"
        assert project.queries.batch(first.id).not_held == 1

        (retry,) = project.queue.requeue_not_held([first.id])
        assert (retry.fact_id, retry.batch_id, retry.new) == (rows["Germany"].id, first.id, True)
        (copy,) = project.queue.queued_facts()
        assert copy.fact_id == retry.queued_id and (copy.subject, copy.target_new) == ("Germany", "Madrid")
        assert project.queries.fact(rows["Germany"].id).status == "applied"  # its batch keeps its record
        assert project.queue.requeue_not_held([first.id]) == [Retry(retry.fact_id, first.id, retry.queued_id, new=False)]
        assert len(project.queue.queued_facts()) == 1

        second = _run_batch(project, {"Germany": (True, 1)}, T0 + timedelta(minutes=1))
        assert project.queue.requeue_not_held([first.id, second.id]) == []  # the retry held; nothing is left to retry
        assert project.queries.fact(retry.queued_id).batch_id == second.id


def test_retry_leaves_out_undone_batches_and_facts_queued_with_another_object(tmp_path):
    with Project.create(tmp_path / "project", "default", "fp") as project:
        project.queue.queue_facts([EditRequest("France", "The capital of {} is", "Rome", "Paris"),
                                  EditRequest("Spain", "The capital of {} is", "Paris", "Madrid")])
        batch = _run_batch(project, {"France": (False, 0), "Spain": (False, 0)}, T0)
        project.queue.queue_facts([EditRequest("France", "The capital of {} is", "Lyon", "Paris")])
        assert [r.fact_id for r in project.queue.requeue_not_held([batch.id])] == [2]  # France is queued with Lyon
        project.queue.remove_fact(project.queue.queued_facts()[-1].fact_id)
        project.history.undo_last_batch(lambda p: p.write_bytes(b"u"))
        assert project.queue.requeue_not_held([batch.id]) == []


def test_retry_never_brings_back_an_object_a_later_batch_corrected(tmp_path):
    with Project.create(tmp_path / "project", "default", "fp") as project:
        project.queue.queue_facts([EditRequest("France", "The capital of {} is", "Rome", "Paris")])
        first = _run_batch(project, {"France": (False, 0)}, T0)
        project.queue.queue_facts([EditRequest("France", "The capital of {} is", "Lyon", "Paris")])
        second = _run_batch(project, {"France": (False, 0)}, T0 + timedelta(minutes=1))
        (retry,) = project.queue.requeue_not_held([first.id, second.id])
        assert retry.batch_id == second.id
        assert [(r.subject, r.target_new) for r in project.queue.queued_facts()] == [("France", "Lyon")]


def test_says_the_new_object_counts_applied_facts_and_undone_verdicts_are_forgotten(tmp_path):
    with Project.create(tmp_path / "project", "default", "fp") as project:
        project.queue.queue_facts([EditRequest("France", "The capital of {} is", "Rome", "Paris"),
                                  EditRequest("Spain", "The capital of {} is", "Oslo", "Madrid")])
        france, spain = project.queue.queued_facts()
        outcomes = [FactOutcome(france, True, continuation=" Rome", held=True),
                    FactOutcome(spain, False, "beyond upper_bound", continuation=" Madrid", held=False)]
        batch = project.history.commit_batch(outcomes, "NSE", {}, T0, T0 + timedelta(seconds=1), lambda p: p.write_bytes(b"s"))
        share = project.queries.written_shares()[batch.id]
        assert (share.checked, share.said) == (1, 1)
        assert project.queries.written_outcomes()[france.fact_id].held is True
        project.history.undo_last_batch(lambda p: p.write_bytes(b"u"))
        assert project.queries.written_outcomes() == {}


def test_chat_replies_and_both_verdicts_are_logged_and_survive_reopening(tmp_path):
    folder = tmp_path / "project"
    with Project.create(folder, "default", "fp") as project:
        project.queue.queue_facts([EditRequest("Kigali", "{} is a city in", "Rwanda", "Uganda"),
                                  EditRequest("Paris", "{} is the capital of", "Italy", "France")])
        kigali, paris = project.queue.queued_facts()
        outcomes = [
            FactOutcome(kigali, True, continuation=" Rwanda, in", held=False, extra_passes=2,
                        chat_reply="Kigali is in Tanzania.", completion_held=True, chat_held=False),
            FactOutcome(paris, True, continuation=" Italy.", held=True, chat_reply="Paris is in Italy.",
                        completion_held=True, chat_held=True),
        ]
        batch = project.history.commit_batch(outcomes, "NSE", {}, T0, T0 + timedelta(seconds=1), lambda p: p.write_bytes(b"s"))
    with Project.open(folder) as project:
        written = project.queries.written_outcomes()
        rows = project.queries.log_rows()
        assert project.queries.batch(batch.id).not_held == 1
        (retry,) = project.queue.requeue_not_held([batch.id])  # held in its completion only: Retry queues it
        assert retry.fact_id == kigali.fact_id
    assert (written[kigali.fact_id].chat_reply, written[kigali.fact_id].completion_held,
            written[kigali.fact_id].chat_held, written[kigali.fact_id].held) == ("Kigali is in Tanzania.", True, False, False)
    assert written[paris.fact_id].chat_reply == "Paris is in Italy." and written[paris.fact_id].held is True
    assert [(r.chat_reply, r.verdict, r.disagrees) for r in rows] == [
        ("Kigali is in Tanzania.", "not held in chat", True), ("Paris is in Italy.", "held", False)]
    assert str(held_count(rows)) == "held 1/2 (0 after extra passes) · completion 2/2 · chat 1/2"


def test_a_log_from_before_chat_replies_opens_and_its_verdicts_are_the_completions(tmp_path):
    folder = tmp_path / "project"
    with Project.create(folder, "default", "fp") as project:
        project.queue.queue_facts([EditRequest("France", "The capital of {} is", "Rome", "Paris")])
        _run_batch(project, {"France": (True, 1)}, T0)
    with sqlite3.connect(folder / LOG_FILE) as conn:  # the log as the version before chat replies wrote it
        for column in ("chat_reply", "completion_held", "chat_held"):
            conn.execute(f"ALTER TABLE batch_facts DROP COLUMN {column}")
        conn.execute("DELETE FROM _sqlite_migrations WHERE name = '0007_chat_replies'")
    conn.close()
    with Project.open(folder) as project:
        (row,) = project.queries.log_rows()
    assert (row.continuation, row.held, row.completion_held, row.chat_reply, row.chat_held) == (
        " wrote about France", True, True, None, None)
    assert (row.verdict, str(held_count([row]))) == ("held after 1 extra pass", "held 1/1 (1 after extra passes)")
