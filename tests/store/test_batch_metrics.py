"""A batch's summary scores are a typed record in the engine and the same JSON object in the log as
before: a project written by an earlier version opens with its scores, and a new batch writes the
object an earlier version reads."""

import sqlite3
from contextlib import closing
from datetime import datetime, timedelta, timezone

from nse_engine.facts import EditRequest, FactOutcome
from nse_engine.store import BatchMetrics, Project
from nse_engine.store.database import LOG_FILE

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)
FACTS = [EditRequest("France", "The capital of {} is", "Rome", "Paris"),
         EditRequest("Italy", "The capital of {} is", "Oslo", "Rome")]


def _commit(project: Project, request: EditRequest, metrics: BatchMetrics | None) -> None:
    [fact_id] = project.queue.queue_facts([request])
    outcome = FactOutcome(project.queries.fact(fact_id).request, applied=True)
    project.history.commit_batch([outcome], "NSE", {}, T0, T0 + timedelta(seconds=1),
                                 lambda p: p.write_bytes(b"s"), metrics=metrics)


def _stored(folder) -> list[str]:
    with closing(sqlite3.connect(folder / LOG_FILE)) as db:
        return [row[0] for row in db.execute("SELECT metrics FROM batches ORDER BY id")]


def test_a_batch_stores_its_scores_as_the_json_object_earlier_versions_wrote(tmp_path):
    first = BatchMetrics(retention=None, efficacy=1.0, generalization=0.5, specificity=0.75)
    later = BatchMetrics(0.5, 1.0, None, 0.25, first_round_retention=1.0, fluency=4.5)
    with Project.create(tmp_path / "p", "tiny", "fp") as project:
        _commit(project, FACTS[0], first)
        _commit(project, FACTS[1], later)
        assert [b.metrics for b in project.queries.batches()] == [first, later]
    assert _stored(tmp_path / "p") == [
        '{"retention": null, "efficacy": 1.0, "generalization": 0.5, "specificity": 0.75}',
        '{"retention": 0.5, "efficacy": 1.0, "generalization": null, "specificity": 0.25, '
        '"first_round_retention": 1.0, "fluency": 4.5}',
    ]


def test_a_log_with_older_or_missing_scores_opens_and_charts_them(tmp_path):
    folder = tmp_path / "p"
    with Project.create(folder, "tiny", "fp") as project:
        _commit(project, FACTS[0], None)
        _commit(project, FACTS[1], None)
    assert _stored(folder) == ["{}", "{}"]
    with closing(sqlite3.connect(folder / LOG_FILE)) as db, db:  # a key this version does not know is passed over
        db.execute("""UPDATE batches SET metrics = '{"efficacy": 0.5, "fluency": 4.0, "old_score": 3}' WHERE id = 2""")
    with Project.open(folder, read_only=True) as project:
        assert [b.metrics for b in project.queries.batches()] == [BatchMetrics(), BatchMetrics(efficacy=0.5, fluency=4.0)]
        point = project.queries.retention_points()[-1]
        assert (point.efficacy, point.fluency, point.specificity) == (0.5, 4.0, None)
