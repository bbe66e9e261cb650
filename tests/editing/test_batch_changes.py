"""What a batch or an undo reports is what the log's queries show afterwards, so a view that
updates itself from BatchChanges shows what a full refresh would; first-round retention is one
number whether the batch measured it or the log's chart computes it."""

import pytest
import torch

from nse_engine.errors import Cancelled
from nse_engine.progress import JobControl
from nse_engine.store.log_rows import first_round_retention
from test_session import ROUND_1, ROUND_2
from test_workspace import open_workspace


def test_first_round_retention_is_the_share_of_the_earliest_rounds_edits():
    assert first_round_retention([(3, True), (2, True), (2, False), (4, False)]) == 0.5
    assert first_round_retention([(1, True)]) == 1.0
    assert first_round_retention([]) is None


def test_a_batch_reports_its_chart_point_batch_row_and_the_log_rows_it_changed(tmp_path):
    ws = open_workspace(tmp_path)
    first_ids = ws.project.queue.queue_facts(ROUND_1)
    first = ws.run_batch(first_ids)
    assert first.point == ws.project.queries.retention_points()[-1]
    assert first.point.first_batch_share == first.point.efficacy  # the first batch's own edits

    later_ids = ws.project.queue.queue_facts(ROUND_2)
    later = ws.run_batch(later_ids)
    points = ws.project.queries.retention_points()
    assert [p.batch_id for p in points] == [first.batch_id, later.batch_id]
    assert later.point == points[-1]
    assert later.point.first_batch_share == pytest.approx(later.metrics.first_round_retention)
    assert later.batch == ws.project.queries.batches()[-1]

    measured = {e.fact_id for e in ws.project.queries.evaluations(batch_id=later.batch_id)}
    assert set(later.fact_ids) == set(later_ids) | measured >= set(first_ids)
    rows = ws.project.queries.log_rows(fact_ids=later.fact_ids)
    assert rows == [r for r in ws.project.queries.log_rows() if r.id in set(later.fact_ids)]
    assert list(later.rows) == rows  # the views take them from the record
    assert later.own_rows == ws.project.queries.log_rows(fact_ids=later_ids)
    now = {e.fact_id: e.prob_new for e in ws.project.queries.evaluations(batch_id=later.batch_id)}
    assert {r.id: r.prob_new_now for r in rows} == now
    assert ws.project.queries.log_rows(status="queued", fact_ids=later.fact_ids) == []
    ws.project.close()


def test_an_undo_reports_its_batch_undone_and_the_facts_it_changed(tmp_path):
    ws = open_workspace(tmp_path)
    first = ws.run_batch(ws.project.queue.queue_facts(ROUND_1))
    ids = ws.project.queue.queue_facts(ROUND_2)
    ran = ws.run_batch(ids)
    measured = {e.fact_id for e in ws.project.queries.evaluations(batch_id=ran.batch_id)} - set(ids)
    assert measured  # the batch measured earlier edits: their "now" was its measurement
    undone = ws.undo_last_batch()
    assert undone.undone and undone.batch_id == ran.batch_id and undone.point is None
    assert undone.batch == ws.project.queries.batch(ran.batch_id) and undone.batch.undone
    assert set(undone.fact_ids) == set(ids) | measured
    rows = ws.project.queries.log_rows(fact_ids=undone.fact_ids)
    assert rows == [r for r in ws.project.queries.log_rows() if r.id in set(undone.fact_ids)]
    assert list(undone.rows) == rows
    own = [r for r in rows if r.id in ids]
    assert [r.status for r in own] == ["undone"] * len(ids)
    # an undone fact no longer describes the model: no "now" figures, no retention
    assert {(r.prob_new_now, r.prob_true_now, r.retained) for r in own} == {(None, None, None)}
    assert all(r.prob_new_after is not None for r in own)  # what its batch did stays on record
    before = {e.fact_id: (e.prob_new, e.retained) for e in ws.project.queries.evaluations(batch_id=first.batch_id)}
    assert {r.id: (r.prob_new_now, r.retained) for r in rows if r.id in measured} == {i: before[i] for i in measured}
    assert [p.batch_id for p in ws.project.queries.retention_points()] == [ran.batch_id - 1]
    ws.project.close()


def test_a_queue_run_yields_each_batchs_record_and_hands_the_model_over_only_between_batches(tmp_path):
    ws = open_workspace(tmp_path)
    ids = ws.project.queue.queue_facts(ROUND_1 + ROUND_2[:1])
    committed_at_pauses = []
    control = JobControl(on_pause=lambda: committed_at_pauses.append(len(ws.project.queries.batches())))
    records = []
    for changes in ws.run_queue(ids, 2, None, control):
        assert changes.point == ws.project.queries.retention_points()[-1]  # as the log reads just after it
        assert list(changes.rows) == ws.project.queries.log_rows(fact_ids=changes.fact_ids)
        records.append(changes)
    assert [r.batch.fact_ids for r in records] == [tuple(ids[:2]), tuple(ids[2:])]
    assert committed_at_pauses == [1]  # once, between the two batches: never inside one
    assert ws.project.queue.queued_facts() == []
    ws.project.close()


def test_a_queue_run_cancelled_between_batches_keeps_the_batches_it_committed(tmp_path):
    ws = open_workspace(tmp_path)
    ids = ws.project.queue.queue_facts(ROUND_1 + ROUND_2)
    control = JobControl()
    run = ws.run_queue(ids, 1, None, control)
    first = next(run)
    weights = {l: ws.session.points.weight(l).clone() for l in ws.session.layers}
    control.cancel()
    with pytest.raises(Cancelled):
        next(run)
    assert [b.id for b in ws.project.queries.batches()] == [first.batch_id]
    assert [r.fact_id for r in ws.project.queue.queued_facts()] == ids[1:]
    assert all(torch.equal(ws.session.points.weight(l), weights[l]) for l in ws.session.layers)
    assert len(ws.session.rounds) == 1
    ws.project.close()
