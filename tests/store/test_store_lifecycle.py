"""A project's life: queueing and editing facts, batches, evaluations, undo, chats, reopening."""

import sqlite3
import threading
from datetime import datetime, timedelta, timezone

import pytest

from nse_engine.facts import EditRequest, FactOutcome, NeighborhoodCheck
from nse_engine.errors import ProjectError
from nse_engine.store import FactEvaluation, InvalidFactError, Project

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)

FRANCE = EditRequest(
    "France", "The capital of France is", "Rome", "Paris",
    paraphrases=("France's capital is",), neighborhood=(NeighborhoodCheck("The capital of Spain is", "Madrid"),),
    relation="capital",
)
GERMANY = EditRequest("Germany", "The capital of {} is", "Madrid", "Berlin")
ITALY = EditRequest("Italy", "The capital of {} is", "Oslo", "Rome")


@pytest.fixture
def project(tmp_path):
    with Project.create(tmp_path / "project", "default", "fp-base") as project:
        yield project


def _run(project, applied=None, state=b"state", evaluations=(), method="nse"):
    """Commit the whole queue as one batch; `applied` maps fact id -> applied (default all)."""
    outcomes = []
    for request in project.queue.queued_facts():
        ok = (applied or {}).get(request.fact_id, True)
        outcomes.append(FactOutcome(request, applied=ok, reason=None if ok else "no effect"))
    write = (lambda path: path.write_bytes(state)) if any(o.applied for o in outcomes) else None
    return project.history.commit_batch(outcomes, method, {"layers": [3, 4]}, T0, T0 + timedelta(seconds=2.5), write, evaluations)


def test_queued_facts_come_back_as_templates_in_order(project):
    ids = project.queue.queue_facts([FRANCE, GERMANY])
    queue = project.queue.queued_facts()
    assert [r.fact_id for r in queue] == ids
    assert queue[0].prompt == "The capital of {} is"
    assert queue[0].paraphrases == FRANCE.paraphrases and queue[0].neighborhood == FRANCE.neighborhood
    assert queue[0].relation == "capital"
    fact = project.queries.fact(ids[0])
    assert fact.status == "queued" and fact.created_at


def test_queue_refuses_invalid_and_duplicate_facts_all_or_none(project):
    project.queue.queue_facts([GERMANY])
    with pytest.raises(InvalidFactError) as error:
        project.queue.queue_facts([FRANCE, EditRequest("Spain", "The capital of {} is", "", None), GERMANY])
    assert {p.code for p in error.value.problems} == {"empty", "duplicate"}
    assert "fact 2" in str(error.value) and "fact 3" in str(error.value)
    assert len(project.queue.queued_facts()) == 1


def test_edit_remove_and_reorder_the_queue(project):
    france, germany, italy = project.queue.queue_facts([FRANCE, GERMANY, ITALY])
    project.queue.update_fact(germany, EditRequest("Germany", "Germany's capital is", "Vienna", "Berlin"))
    assert project.queries.fact(germany).request.prompt == "{}'s capital is"
    assert project.queries.fact(germany).request.target_new == "Vienna"
    with pytest.raises(InvalidFactError, match="duplicate of queued fact"):
        project.queue.update_fact(germany, ITALY)

    project.queue.remove_fact(france)
    with pytest.raises(ProjectError):
        project.queries.fact(france)
    project.queue.reorder([italy, germany])
    assert [r.subject for r in project.queue.queued_facts()] == ["Italy", "Germany"]
    with pytest.raises(ProjectError, match="every queued fact"):
        project.queue.reorder([italy])


def test_a_batch_records_outcomes_state_and_evaluations(project):
    france, germany = project.queue.queue_facts([FRANCE, GERMANY])
    batch = _run(project, applied={germany: False}, state=b"after batch 1",
                 evaluations=[FactEvaluation(france, True, 0.8, 0.05)])

    assert batch.outcome == "partial" and batch.applied_count == 1 and batch.fact_ids == (france, germany)
    assert batch.hparams == {"layers": [3, 4]} and batch.duration_s == 2.5
    assert project.queries.fact(france).status == "applied" and project.queries.fact(france).batch_id == batch.id
    assert project.queries.fact(germany).status == "failed" and project.queries.fact(germany).reason == "no effect"
    assert project.history.current_state_file().read_bytes() == b"after batch 1"
    assert project.history.current_state_file().name == batch.state_file
    project.history.verify_current_state()
    (evaluation,) = project.queries.evaluations(batch_id=batch.id)
    assert evaluation.retained and evaluation.prob_new == 0.8
    with pytest.raises(ProjectError, match="only queued"):
        project.queue.update_fact(france, FRANCE)
    with pytest.raises(ProjectError, match="only queued"):
        project.history.commit_batch([FactOutcome(project.queries.fact(france).request, True)], "nse", {}, T0, T0, None)


def test_failed_facts_can_be_requeued_and_a_batch_without_changes_writes_no_state(project):
    (germany,) = project.queue.queue_facts([GERMANY])
    batch = _run(project, applied={germany: False})
    assert batch.outcome == "failed" and batch.state_file is None
    assert project.history.current_state_file() is None
    project.queue.requeue([germany])
    assert [r.fact_id for r in project.queue.queued_facts()] == [germany]
    with pytest.raises(ProjectError, match="ran in batch"):
        project.queue.remove_fact(germany)


def test_undo_marks_facts_undone_and_points_at_the_restored_state(project):
    (france,) = project.queue.queue_facts([FRANCE])
    first = _run(project, state=b"one")
    (germany,) = project.queue.queue_facts([GERMANY])
    second = _run(project, state=b"two")

    undone = project.history.undo_last_batch(lambda path: path.write_bytes(b"one again"))
    assert undone.id == second.id and undone.undone
    assert project.queries.fact(germany).status == "undone" and project.queries.fact(france).status == "applied"
    assert project.history.current_state_file().read_bytes() == b"one again"
    assert [b.id for b in project.queries.batches(include_undone=False)] == [first.id]

    project.history.undo_last_batch(lambda path: path.write_bytes(b"base"))
    assert project.queries.fact(france).status == "undone"
    with pytest.raises(ProjectError, match="no batch to undo"):
        project.history.undo_last_batch(lambda path: path.write_bytes(b"x"))
    project.queue.requeue([france, germany])
    assert [r.subject for r in project.queue.queued_facts()] == ["France", "Germany"]


def test_reopening_restores_the_current_state_and_drops_leftover_files(tmp_path):
    folder = tmp_path / "project"
    with Project.create(folder) as project:
        project.queue.queue_facts([FRANCE])
        _run(project, state=b"edited")
        expected = project.history.current_state_file()
    (folder / "state" / "state-000099.safetensors").write_bytes(b"not written by this log")
    (folder / "state" / ".state-000002.safetensors.tmp-123").write_bytes(b"half")

    with Project.open(folder) as project:
        assert project.history.current_state_file() == expected
        assert sorted(p.name for p in project.state_dir.iterdir()) == [expected.name, "state-000099.safetensors"]


def test_a_failing_state_writer_leaves_no_trace(project):
    project.queue.queue_facts([FRANCE])

    def broken_writer(path):
        path.write_bytes(b"partial")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        project.history.commit_batch([FactOutcome(r, True) for r in project.queue.queued_facts()], "nse", {}, T0, T0, broken_writer)
    assert project.queries.batches() == [] and list(project.state_dir.iterdir()) == []
    assert project.queue.queued_facts()[0].subject == "France"


def test_a_failing_transaction_removes_the_new_state_file(project):
    project.queue.queue_facts([FRANCE])
    bad_evaluation = [FactEvaluation(fact_id=12345, retained=True)]  # no such fact: foreign key fails
    with pytest.raises(sqlite3.IntegrityError):
        _run(project, evaluations=bad_evaluation)
    assert project.queries.batches() == [] and list(project.state_dir.iterdir()) == []
    assert project.history.current_state_file() is None


def test_retention_points_count_earlier_edits_still_in_effect(project):
    a, b = project.queue.queue_facts([FRANCE, GERMANY])
    first = _run(project, evaluations=[FactEvaluation(a, True), FactEvaluation(b, True)])
    (c,) = project.queue.queue_facts([ITALY])
    second = _run(project, evaluations=[FactEvaluation(a, True), FactEvaluation(b, False), FactEvaluation(c, True)])
    (d,) = project.queue.queue_facts([EditRequest("Spain", "The capital of {} is", "Paris", "Madrid")])
    third = _run(project, evaluations=[FactEvaluation(a, False), FactEvaluation(b, False), FactEvaluation(c, True)])

    series = project.queries.retention_points()
    assert [(p.batch_id, p.edits_applied, p.evaluated, p.retained) for p in series] == [
        (first.id, 2, 0, 0), (second.id, 3, 2, 1), (third.id, 4, 3, 1),
    ]
    assert series[0].share is None and series[1].share == 0.5
    assert len(project.queries.evaluations(first_batch=second.id)) == 6
    assert len(project.queries.evaluations(fact_id=a)) == 3

    project.history.undo_last_batch(lambda path: path.write_bytes(b"s"))
    assert [p.batch_id for p in project.queries.retention_points()] == [first.id, second.id]


def test_chats_remember_the_model_state(project):
    assert project.chats.record("Hi", "Hello").batch_id is None
    project.queue.queue_facts([FRANCE])
    batch = _run(project)
    chat = project.chats.record("The capital of France is", "Rome")
    assert chat.batch_id == batch.id
    assert [c.answer for c in project.queries.chats()] == ["Hello", "Rome"]


def test_base_model_is_checked_against_the_project(tmp_path):
    with Project.create(tmp_path / "p") as project:
        assert project.meta.base_model_fingerprint is None
        project.meta.check_base_model("default", "fp-1")
        project.meta.check_base_model("default", "fp-1")
        with pytest.raises(ProjectError, match="different model"):
            project.meta.check_base_model("/models/other", "fp-2")
    with Project.open(tmp_path / "p") as project:
        assert project.meta.base_model_source == "default"


def test_facts_can_be_filtered_and_searched(project):
    france, germany, italy = project.queue.queue_facts([FRANCE, GERMANY, ITALY])
    _run(project, applied={germany: False, italy: False})
    assert [f.id for f in project.queries.facts(status="applied")] == [france]
    assert [f.id for f in project.queries.facts(search="berl")] == [germany]
    assert [f.id for f in project.queries.facts(search="capital", status="failed")] == [germany, italy]
    assert project.queries.facts(search="100%") == []
    assert project.queries.count_facts() == 3 and project.queries.count_facts(status="failed") == 2
    assert [f.id for f in project.queries.facts(limit=1, offset=1)] == [germany]
    with pytest.raises(ProjectError, match="unknown status"):
        project.queries.facts(status="done")


def test_a_project_belongs_to_the_thread_that_opened_it(project):
    errors = []
    worker = threading.Thread(target=lambda: _collect(errors, project.queue.queued_facts))
    worker.start()
    worker.join()
    assert len(errors) == 1 and isinstance(errors[0], sqlite3.ProgrammingError)


def _collect(errors, call):
    try:
        call()
    except Exception as exc:  # noqa: BLE001 - the test inspects it
        errors.append(exc)


def test_requeue_refuses_a_fact_already_waiting_in_the_queue(project):
    (germany,) = project.queue.queue_facts([GERMANY])
    _run(project, applied={germany: False})
    project.queue.queue_facts([EditRequest("Germany", "The capital of {} is", "Vienna", "Berlin")])
    with pytest.raises(InvalidFactError, match="already asks for 'Vienna'"):
        project.queue.requeue([germany])
