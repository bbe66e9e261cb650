"""Messages that say what happened: read-only media, a full disk, the CSV cell limit."""

from __future__ import annotations

import pytest

from nse_engine.errors import ProjectError
from nse_engine.fact_files.csv_facts import MAX_CSV_CELL
from nse_engine.store import Project
from nse_engine.workspace import Workspace

from reliability.faults import (
    FACTS, cli, edit_requests, edited_weights, error_line, new_workspace, read_only, small_disk, tiny_loaded,
    write_facts_csv,
)


def test_a_project_on_read_only_media_can_be_viewed_and_chatted_with(tmp_path, capsys, facts_csv):
    folder = tmp_path / "project"
    workspace = new_workspace(folder)
    with workspace.closing():
        workspace.run_batch(workspace.project.queue.queue_facts(edit_requests(FACTS[:2])))
        workspace.project.queue.queue_facts(edit_requests(FACTS[2:3]))
        edited = edited_weights(workspace)

    with read_only(folder):
        rc, out, err = cli(capsys, "log", "--project", folder)
        assert rc == 0, err
        assert "facts (3)" in out and "current state: state-000001.safetensors" in out

        rc, out, err = cli(capsys, "import", facts_csv, "--project", folder)
        assert "read-only" in error_line(rc, err)

        workspace = Workspace.open(tiny_loaded(), folder)
        with workspace.closing():
            assert workspace.project.read_only
            for layer, weight in edited_weights(workspace).items():
                assert weight.equal(edited[layer])
            assert workspace.project.chats.record("Hi", "Hello") is None
            with pytest.raises(ProjectError, match="read-only"):
                workspace.project.require_writable("edit")
            with pytest.raises(ProjectError, match="read-only"):
                workspace.run_batch([r.fact_id for r in workspace.project.queue.queued_facts()])
            assert len(workspace.project.queries.batches()) == 1


def test_a_full_disk_is_called_full_not_unreadable(tmp_path, capsys, facts_csv):
    with small_disk(tmp_path / "disk", "1m") as disk:
        folder = disk.path / "project"
        with Project.create(folder) as project:
            project.queue.queue_facts(edit_requests(FACTS[:1]))
        disk.fill()
        rc, out, err = cli(capsys, "import", facts_csv, "--project", folder)
        message = error_line(rc, err)
        assert "full" in message and "not a readable" not in message


def test_a_csv_cell_over_the_limit_is_one_rejected_row(tmp_path):
    huge = "x" * (MAX_CSV_CELL + 1)
    path = write_facts_csv(tmp_path / "facts.csv", [FACTS[0], ("Spain", "The capital of {} is", huge, "Madrid"), FACTS[1]])
    with Project.create(tmp_path / "project") as project:
        report = project.queue.import_facts(path)
        assert report.imported == 2
        (row,) = report.rejected
        assert str(row.problems[0]) == (
            f"line 3: (row): has a cell longer than {MAX_CSV_CELL:,} characters, the most a CSV cell may hold; shorten it"
        )
