"""A Workspace keeps model, editing session and project log in agreement, across reopenings."""

import pytest
import torch

from nse_engine.editing.session import EditingSession
from nse_engine.errors import Cancelled, ProjectError
from nse_engine.progress import JobControl
from nse_engine.store import Project
from nse_engine.workspace import Workspace
from test_session import ROUND_1, ROUND_2
from tiny import tiny_hparams, tiny_loaded


def open_workspace(folder, seed: int = 0) -> Workspace:
    loaded = tiny_loaded(seed=seed)
    project = Project.open(folder) if (folder / "project.sqlite").exists() else Project.create(folder)
    state = project.history.current_state_file()
    session = EditingSession.from_state(loaded, state) if state else EditingSession(loaded, tiny_hparams())
    project.meta.check_base_model("tiny", session.base_fingerprint)
    workspace = Workspace(loaded, session, project)
    workspace.measure_fluency = False
    return workspace


def test_batch_is_logged_and_reopening_restores_the_edited_model(tmp_path):
    ws = open_workspace(tmp_path)
    ids = ws.project.queue.queue_facts(ROUND_1)
    changes = ws.run_batch(ids)
    assert changes.batch_id is not None and sorted(changes.applied_fact_ids) == sorted(ids)
    assert [f.status for f in ws.project.queries.facts()] == ["applied", "applied"]
    before = ws.project.queries.probabilities_before()
    after = {e.fact_id: e.prob_new for e in ws.project.queries.evaluations(batch_id=changes.batch_id)}
    for fact_id in ids:  # the Log shows what the model answered before the edit, and after it
        assert 0 < before[fact_id][0] < after[fact_id]
        assert before[fact_id][1] is not None
    edited = {l: ws.session.points.weight(l).clone() for l in ws.session.layers}

    ids2 = ws.project.queue.queue_facts(ROUND_2)
    changes2 = ws.run_batch(ids2)
    assert changes2.retention is not None  # earlier edits were re-evaluated
    assert {e.fact_id for e in ws.project.queries.evaluations(batch_id=changes2.batch_id)} >= set(ids)
    final = {l: ws.session.points.weight(l).clone() for l in ws.session.layers}
    ws.project.close()

    reopened = open_workspace(tmp_path)
    for l in reopened.session.layers:
        assert torch.equal(reopened.session.points.weight(l), final[l])
    reopened.undo_last_batch()
    for l in reopened.session.layers:
        assert torch.equal(reopened.session.points.weight(l), edited[l])
    assert [b.undone for b in reopened.project.queries.batches()] == [False, True]
    reopened.project.close()

    after_undo = open_workspace(tmp_path)
    for l in after_undo.session.layers:
        assert torch.equal(after_undo.session.points.weight(l), edited[l])
    after_undo.project.close()


def test_cancelled_batch_leaves_model_session_and_log_unchanged(tmp_path):
    ws = open_workspace(tmp_path)
    ws.run_batch(ws.project.queue.queue_facts(ROUND_1))
    weights = {l: ws.session.points.weight(l).clone() for l in ws.session.layers}
    ids = ws.project.queue.queue_facts(ROUND_2)

    def cancel_in_evaluation(progress):
        if progress.phase == "evaluation":
            control.cancel()

    control = JobControl(cancel_in_evaluation)
    with pytest.raises(Cancelled):
        ws.run_batch(ids, control)
    for l in ws.session.layers:
        assert torch.equal(ws.session.points.weight(l), weights[l])
    assert len(ws.session.rounds) == 1
    assert len(ws.project.queries.batches()) == 1
    assert [r.fact_id for r in ws.project.queue.queued_facts()] == ids


def test_project_of_another_base_model_is_refused(tmp_path):
    ws = open_workspace(tmp_path)
    ws.run_batch(ws.project.queue.queue_facts(ROUND_1))
    ws.project.close()
    with pytest.raises(ProjectError):
        open_workspace(tmp_path, seed=1)


def test_a_new_project_with_chosen_layers_prepares_and_opens_again(tmp_path, shared_cache):
    """Opened without deriving (the app's way), a new project with its own layers is checked at
    those layers: its preparation, and the next opening, do not call the model a different one."""
    folder = tmp_path / "p"
    chosen = {"layers": "2-3"}  # the tiny model's default layers are 1-2
    with Workspace.open(tiny_loaded(), folder, settings=chosen, derive=False).closing() as ws:
        ws.prepare(JobControl())
        assert ws.hparams.layers == (2, 3)
    with Workspace.open(tiny_loaded(), folder, derive=False).closing() as ws:
        ws.prepare(JobControl())
        assert ws.prepared and ws.hparams.layers == (2, 3)
