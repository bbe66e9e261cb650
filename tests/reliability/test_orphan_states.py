"""Opening a project deletes only what the crash protocol itself leaves in `state/` (its temporary
files, and the one state file the log says it was writing when the run was killed); a renamed
state, a note, a state copied in, or the states of a log that was replaced or deleted are kept. A folder whose log is
gone is not silently turned into a new, empty project."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from nse_engine.store import Project

from reliability.faults import (
    FACTS, NEW_STATE, commit_facts, edit_requests, error_line, make_project, paused_child, run_nse, write_facts_csv,
)


def _state_files(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((folder / "state").iterdir())}


def test_rollback_keeps_a_state_file_renamed_to_bak(tmp_path):
    folder = make_project(tmp_path / "project", batches=2)
    current = folder / "state" / "state-000002.safetensors"
    backup = current.with_name(current.name + ".bak")
    current.rename(backup)
    content = backup.read_bytes()
    result = run_nse("rollback", "--project", folder, timeout=120)
    assert result.returncode == 0, result.stderr
    assert backup.read_bytes() == content  # the recovery command keeps the user's copy
    with Project.open(folder, read_only=True) as project:
        assert project.queries.current_state().path.name == "state-000001.safetensors"


def test_files_the_log_could_not_have_written_are_kept(tmp_path):
    folder = make_project(tmp_path / "project", batches=2)
    state = folder / "state"
    (state / "notes.txt").write_text("which batch was good")
    older = state / "state-000000.safetensors"  # an id the log is past, which it never recorded
    older.write_bytes(b"from somewhere else")
    kept = _state_files(folder)
    result = run_nse("import", write_facts_csv(tmp_path / "more.csv", FACTS[4:6]), "--project", folder, timeout=120)
    assert result.returncode == 0, result.stderr
    assert _state_files(folder) == kept
    assert "keeping" in result.stderr and older.name in result.stderr  # said once, as a warning


def test_crash_leftovers_are_still_removed(tmp_path):
    folder = make_project(tmp_path / "project", batches=1)
    with Project.open(folder) as project:
        project.queue.queue_facts(edit_requests(FACTS[4:6]))
    with paused_child(folder, "commit", "renamed"):  # killed with its state file in place, not recorded
        pass
    state = folder / "state"
    assert (state / "state-000002.safetensors").read_bytes() == NEW_STATE
    (state / "notes.txt").write_text("mine")
    (state / ".state-000002.safetensors.tmp-4242").write_bytes(b"half written")
    (state / "..state-000002.safetensors.tmp-4242.tmp-4242").write_bytes(b"half written by the state writer")
    (state / ".tmpAb12Cd").write_bytes(b"safetensors' own temporary file")
    with Project.open(folder) as project:
        assert project.queries.count_facts("queued") == 2
    assert sorted(_state_files(folder)) == ["notes.txt", "state-000001.safetensors"]


def test_a_state_file_at_the_next_id_that_the_log_did_not_write_is_kept(tmp_path):
    """A state copied in by the user (from a backup, another project) under the name the next
    batch would take is kept, however new its file times; the next batch takes another name."""
    folder = make_project(tmp_path / "project", batches=1)
    copied = folder / "state" / "state-000002.safetensors"
    copied.write_bytes(b"a state put back from a backup")
    result = run_nse("import", write_facts_csv(tmp_path / "more.csv", FACTS[4:6]), "--project", folder, timeout=120)
    assert result.returncode == 0, result.stderr
    assert copied.read_bytes() == b"a state put back from a backup"
    assert "keeping" in result.stderr and copied.name in result.stderr
    with Project.open(folder) as project:
        commit_facts(project, [], b"the next batch")
        assert project.queries.current_state().path.name == "state-000003.safetensors"
    assert copied.read_bytes() == b"a state put back from a backup"


@pytest.mark.parametrize("how", ["copied", "moved"])
def test_replacing_the_log_with_another_projects_keeps_every_state_file(tmp_path, how):
    folder = make_project(tmp_path / "project", batches=3)
    other = make_project(tmp_path / "other", batches=1)
    before = _state_files(folder)
    if how == "copied":
        shutil.copyfile(other / "project.sqlite", folder / "project.sqlite")
    else:
        os.replace(other / "project.sqlite", folder / "project.sqlite")
    result = run_nse("import", write_facts_csv(tmp_path / "more.csv", FACTS[5:7]), "--project", folder, timeout=120)
    assert result.returncode == 0, result.stderr
    assert _state_files(folder) == before

    with Project.open(folder) as project:  # the next batch writes a new file, over none of them
        commit_facts(project, [], b"a new state")
        written = project.queries.current_state().path.name
    assert written not in before and {k: v for k, v in _state_files(folder).items() if k != written} == before


def test_import_where_the_log_was_deleted_is_refused(tmp_path):
    folder = make_project(tmp_path / "project", batches=2)
    before = _state_files(folder)
    (folder / "project.sqlite").unlink()
    result = run_nse("import", write_facts_csv(tmp_path / "more.csv", FACTS[4:6]), "--project", folder, timeout=120)
    line = error_line(result.returncode, result.stderr)
    assert "state-000001.safetensors" in line and "project.sqlite" in line
    assert "created project" not in result.stdout and not (folder / "project.sqlite").exists()
    assert _state_files(folder) == before


def test_an_empty_log_is_never_answered_with_delete_it(tmp_path):
    folder = make_project(tmp_path / "project", batches=1)
    (folder / "project.sqlite").write_bytes(b"")
    result = run_nse("log", "--project", folder, timeout=120)
    line = error_line(result.returncode, result.stderr)
    assert "empty" in line and "delete" not in line.lower()
