"""Every failure a user or the machine causes is one `error:` line and exit 2, and the project
stays as it was: bad output paths, a full disk, a damaged log, bad numbers and settings."""

from __future__ import annotations

import pytest

from nse_engine.errors import NseError
from nse_engine.store import Project

from reliability.faults import (
    FACTS, cli, edit_requests, edited_weights, error_line, new_workspace, overwrite, read_only, small_disk,
    write_facts_csv,
)


@pytest.fixture
def project_folder(tmp_path):
    folder = tmp_path / "project"
    with Project.create(folder) as project:
        project.queue.queue_facts(edit_requests(FACTS[:2]))
    return folder


def _bad_targets(tmp_path):
    folder = tmp_path / "a-folder"
    folder.mkdir()
    return {"missing folder": tmp_path / "missing" / "out.csv", "a folder": folder}


@pytest.mark.parametrize("kind", ["missing folder", "a folder", "read-only"])
def test_log_csv_to_a_place_that_cannot_be_written(tmp_path, capsys, project_folder, kind):
    if kind == "read-only":
        media = tmp_path / "media"
        media.mkdir()
        with read_only(media):
            rc, out, err = cli(capsys, "log", "--project", project_folder, "--csv", media / "out.csv")
        target = media / "out.csv"
    else:
        target = _bad_targets(tmp_path)[kind]
        rc, out, err = cli(capsys, "log", "--project", project_folder, "--csv", target)
    assert str(target) in error_line(rc, err)


@pytest.mark.parametrize("kind", ["missing folder", "a folder", "read-only"])
def test_import_errors_file_that_cannot_be_written_stops_before_importing(tmp_path, capsys, project_folder, kind):
    rows = write_facts_csv(tmp_path / "rows.csv", [*FACTS[4:6], ("Peru", "The capital is", "Quito", "Lima")])
    if kind == "read-only":
        media = tmp_path / "media"
        media.mkdir()
        with read_only(media):
            rc, out, err = cli(capsys, "import", rows, "--project", project_folder, "--errors", media / "e.csv")
    else:
        rc, out, err = cli(capsys, "import", rows, "--project", project_folder, "--errors",
                           _bad_targets(tmp_path)[kind])
    assert "--errors" in error_line(rc, err)
    with Project.open(project_folder) as project:
        assert project.queries.count_facts() == 2


def test_disk_full_during_an_import(tmp_path, capsys):
    rows = write_facts_csv(tmp_path / "many.csv", [(f"Country {i}", "The capital of {} is", "Rome", "Paris")
                                                   for i in range(20_000)])
    with small_disk(tmp_path / "disk", "1m") as disk:
        folder = disk.path / "project"
        Project.create(folder).close()
        rc, out, err = cli(capsys, "import", rows, "--project", folder)
        assert "disk" in error_line(rc, err) and "full" in err
        rc, out, err = cli(capsys, "log", "--project", folder)
        assert rc == 0 and "facts (0)" in out


def test_disk_full_while_saving_the_state(tmp_path):
    with small_disk(tmp_path / "disk", "4m") as disk:
        workspace = new_workspace(disk.path / "project")
        with workspace.closing():
            ids = workspace.project.queue.queue_facts(edit_requests(FACTS[:2]))
            before = edited_weights(workspace)
            filler = disk.fill(leave_free=2048)
            with pytest.raises(NseError, match="full") as failure:
                workspace.run_batch(ids)
            assert "free" in str(failure.value)
            for layer, weight in edited_weights(workspace).items():
                assert weight.equal(before[layer])
            assert workspace.project.queries.batches() == [] and [r.fact_id for r in workspace.project.queue.queued_facts()] == ids
            assert not [p for p in workspace.project.state_dir.iterdir()]
            filler.unlink()
            assert workspace.run_batch(ids).batch_id == 1


def test_a_log_damaged_in_the_middle(tmp_path, capsys):
    folder = tmp_path / "project"
    with Project.create(folder) as project:
        project.queue.queue_facts(edit_requests([(f"Country {i}", "The capital of {} is", "Rome", "Paris") for i in range(400)]))
    overwrite(folder / "project.sqlite", 3 * 4096, b"\x55" * 4 * 4096)
    rc, out, err = cli(capsys, "log", "--project", folder)
    assert "damaged" in error_line(rc, err)


@pytest.mark.parametrize("option", [("--batch-size", "0"), ("--set", "bogus=1"), ("--set", "alpha=abc")])
def test_bad_numbers_and_settings_of_nse_edit(tmp_path, capsys, tiny_model_dir, facts_csv, option):
    project = tmp_path / "project"
    rc, out, err = cli(capsys, "edit", "--model", tiny_model_dir, "--cases", facts_csv, "--project", project, *option)
    assert option[0] in error_line(rc, err)
    assert not project.exists()


@pytest.mark.parametrize(("option", "says"), [
    ("method=memit", "method is fixed for a project and cannot be set for a batch; choose it with --method"),
    ("layers=2,3", "layers is fixed for a project and cannot be set for a batch; start a new project"),
    ("stats_tokens=64", "stats_tokens is used once, when the project prepares editing"),
])
def test_nse_edit_refuses_a_setting_one_batch_cannot_change_before_anything_is_loaded(
        tmp_path, capsys, tiny_model_dir, facts_csv, option, says):
    project = tmp_path / "project"
    rc, out, err = cli(capsys, "edit", "--model", tiny_model_dir, "--cases", facts_csv, "--project", project,
                       "--set", option)
    assert says in error_line(rc, err)
    assert not project.exists()  # not created, no facts queued, no model loaded for a batch that cannot run
