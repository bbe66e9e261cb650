"""Every restore checks the state file against the checksum the log recorded and refuses a
damaged one, naming the last good state; `nse rollback` goes back to it."""

from __future__ import annotations

import sqlite3

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from nse_engine.atomic import sha256_file
from nse_engine.errors import ProjectError
from nse_engine.model.architecture import find_edit_points
from nse_engine.store import Project
from nse_engine.workspace import Workspace

from reliability.faults import (
    FACTS, cli, edit_requests, edited_weights, new_workspace, overwrite, safetensors_data_offset, tiny_loaded,
)


def _project_with_batches(folder, batches: int) -> list[dict]:
    """`batches` batches of two facts; the edited weights after each."""
    workspace = new_workspace(folder)
    weights = []
    with workspace.closing():
        for b in range(batches):
            workspace.run_batch(workspace.project.queue.queue_facts(edit_requests(FACTS[2 * b : 2 * b + 2])))
            weights.append(edited_weights(workspace))
    return weights


def _damage_tensors(path) -> None:
    """Overwrite the tensor bytes (the header stays intact) with NaN patterns."""
    start = safetensors_data_offset(path)
    overwrite(path, start, b"\xff" * 256)


def _damaged_project(tmp_path, batches: int):
    """A project whose newest state file (of `batches`) is damaged; its folder and the weights after each batch."""
    folder = tmp_path / "project"
    weights = _project_with_batches(folder, batches)
    _damage_tensors(folder / "state" / f"state-{batches:06d}.safetensors")
    return folder, weights


def _assert_weights(workspace, expected: dict) -> None:
    for layer, weight in edited_weights(workspace).items():
        assert torch.equal(weight, expected[layer])


def test_a_damaged_state_is_refused_naming_the_file_and_the_last_good_state(tmp_path):
    folder, _ = _damaged_project(tmp_path, 2)

    with pytest.raises(ProjectError) as refused:
        Workspace.open(tiny_loaded(), folder)
    message = str(refused.value)
    assert "state-000002.safetensors" in message and "damaged" in message
    assert "state-000001.safetensors" in message and f"nse rollback --project {folder}" in message
    with Project.open(folder) as project:  # refusing closed the project again
        assert len(project.queries.batches()) == 2


def test_nse_log_reports_a_damaged_state_and_what_to_run(tmp_path, capsys):
    folder, _ = _damaged_project(tmp_path, 2)

    rc, out, err = cli(capsys, "log", "--project", folder)
    assert rc == 0, err
    assert "state-000002.safetensors is damaged" in out and f"nse rollback --project {folder}" in out


def test_rollback_goes_back_to_the_last_good_state_and_work_goes_on(tmp_path, capsys):
    folder, weights = _damaged_project(tmp_path, 2)

    rc, out, err = cli(capsys, "rollback", "--project", folder)
    assert rc == 0, err
    assert "batch 2" in out and "state-000001.safetensors" in out

    workspace = Workspace.open(tiny_loaded(), folder)
    workspace.measure_fluency = False
    with workspace.closing():
        _assert_weights(workspace, weights[0])
        batches = workspace.project.queries.batches()
        assert [b.undone for b in batches] == [False, True]
        assert {f.status for f in workspace.project.queries.facts() if f.batch_id == batches[1].id} == {"undone"}
        workspace.project.queue.requeue([f.id for f in workspace.project.queries.facts(status="undone")])
        changes = workspace.run_batch([r.fact_id for r in workspace.project.queue.queued_facts()])
        assert changes.applied_fact_ids or changes.failed
    rc, out, err = cli(capsys, "rollback", "--project", folder)
    assert rc == 0 and "intact" in out


def test_rollback_to_the_base_model_when_no_state_file_is_good(tmp_path, capsys):
    folder, _ = _damaged_project(tmp_path, 1)

    rc, out, err = cli(capsys, "rollback", "--project", folder)
    assert rc == 0, err
    assert "the base model" in out
    points = find_edit_points(tiny_loaded().model)
    expected = {layer: points.weight(layer).clone() for layer in (1, 2)}
    workspace = Workspace.open(tiny_loaded(), folder)
    with workspace.closing():
        _assert_weights(workspace, expected)
        assert workspace.session.rounds == []
        assert workspace.project.queries.batches()[0].undone


def test_rollback_never_brings_back_an_undone_batch(tmp_path, capsys):
    folder = tmp_path / "project"
    workspace = new_workspace(folder)
    with workspace.closing():
        workspace.run_batch(workspace.project.queue.queue_facts(edit_requests(FACTS[0:2])))  # state 1
        after_first = edited_weights(workspace)
        workspace.run_batch(workspace.project.queue.queue_facts(edit_requests(FACTS[2:4])))  # state 2
        workspace.undo_last_batch()  # state 3: as after the first batch
        workspace.run_batch(workspace.project.queue.queue_facts(edit_requests(FACTS[4:6])))  # state 4
    _damage_tensors(folder / "state" / "state-000004.safetensors")
    _damage_tensors(folder / "state" / "state-000003.safetensors")

    rc, out, err = cli(capsys, "rollback", "--project", folder)
    assert rc == 0, err
    assert "state-000001.safetensors" in out  # state 2 holds the undone second batch: never used

    workspace = Workspace.open(tiny_loaded(), folder)
    with workspace.closing():
        _assert_weights(workspace, after_first)
        assert [b.undone for b in workspace.project.queries.batches()] == [False, True, True]


def test_restored_weights_must_be_finite(tmp_path):
    """A state file written with NaN factors (and a matching checksum) is refused, not loaded."""
    folder = tmp_path / "project"
    _project_with_batches(folder, 1)
    path = folder / "state" / "state-000001.safetensors"
    with safe_open(str(path), framework="pt") as fh:
        metadata = fh.metadata()
    tensors = load_file(str(path))
    tensors["r0.u0.left"] = torch.full_like(tensors["r0.u0.left"], float("nan"))
    save_file(tensors, str(path), metadata=metadata)
    with sqlite3.connect(folder / "project.sqlite") as db:
        db.execute("UPDATE state_files SET sha256 = ?", [sha256_file(path)])

    with pytest.raises(ProjectError, match="NaN or infinite"):
        Workspace.open(tiny_loaded(), folder)
