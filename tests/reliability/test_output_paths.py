"""An output path never replaces a project's own files or the file being read: `nse log --csv`
(and its -batches.csv), `nse import --errors`, each in a real `nse` process; the project opens
afterwards with everything it had, and the input file is unchanged."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from nse_engine.errors import OutputFileError
from nse_engine.store import Project
from nse_engine.store.output_paths import check_output_path

from reliability.faults import FACTS, error_line, make_project, run_nse, write_facts_csv


@pytest.fixture
def project_folder(tmp_path) -> Path:
    """A project with one applied batch (so a state file) and two queued facts."""
    return make_project(tmp_path / "project", batches=1, queued=2)


def _fingerprint(folder: Path) -> dict[str, str]:
    """Every file of the project folder with its checksum (the log after a checkpoint)."""
    with Project.open(folder):  # a writer's close checkpoints the log, so its bytes settle
        pass
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _assert_project_intact(folder: Path, before: dict[str, str]) -> None:
    assert _fingerprint(folder) == before
    with Project.open(folder, read_only=True) as project:
        assert project.queries.count_facts() == 3 and len(project.queries.batches()) == 1
        project.history.verify_current_state()


def _managed_targets(folder: Path) -> dict[str, Path]:
    state = next((folder / "state").iterdir())
    return {"log": folder / "project.sqlite", "wal": folder / "project.sqlite-wal", "state file": state,
            "new file in state": folder / "state" / "notes.csv", "lock": folder / ".nse-lock"}


@pytest.mark.parametrize("kind", ["log", "wal", "state file", "new file in state", "lock"])
def test_log_csv_never_replaces_a_project_file(project_folder, kind):
    before = _fingerprint(project_folder)
    target = _managed_targets(project_folder)[kind]
    result = run_nse("log", "--project", project_folder, "--csv", target, timeout=120)
    assert str(target) in error_line(result.returncode, result.stderr)
    assert "project" in result.stderr
    _assert_project_intact(project_folder, before)


def test_log_csv_whose_batches_file_is_a_project_file_writes_neither(tmp_path, project_folder):
    """OUT-batches.csv is checked before OUT is written."""
    before = _fingerprint(project_folder)
    (tmp_path / "out-batches.csv").symlink_to(project_folder / "project.sqlite")
    result = run_nse("log", "--project", project_folder, "--csv", tmp_path / "out.csv", timeout=120)
    assert "out-batches.csv" in error_line(result.returncode, result.stderr)
    assert not (tmp_path / "out.csv").exists()
    _assert_project_intact(project_folder, before)


def test_log_csv_into_the_state_folder_through_a_folder_link_is_refused(tmp_path, project_folder):
    before = _fingerprint(project_folder)
    (tmp_path / "out").symlink_to(project_folder / "state")
    result = run_nse("log", "--project", project_folder, "--csv", tmp_path / "out" / "facts.csv", timeout=120)
    error_line(result.returncode, result.stderr)
    _assert_project_intact(project_folder, before)


def test_log_csv_through_a_symlink_to_the_log_is_refused(tmp_path, project_folder):
    before = _fingerprint(project_folder)
    link = tmp_path / "innocent.csv"
    link.symlink_to(project_folder / "project.sqlite")
    result = run_nse("log", "--project", project_folder, "--csv", link, timeout=120)
    assert "innocent.csv" in error_line(result.returncode, result.stderr)
    _assert_project_intact(project_folder, before)


def test_import_errors_never_replace_the_project_log(tmp_path, project_folder):
    before = _fingerprint(project_folder)
    rows = write_facts_csv(tmp_path / "rows.csv", [FACTS[4], ("Peru", "The capital is", "Quito", "Lima")])
    result = run_nse("import", rows, "--project", project_folder, "--errors", project_folder / "project.sqlite",
                     timeout=120)
    assert "--errors" in error_line(result.returncode, result.stderr)
    _assert_project_intact(project_folder, before)  # refused before anything was imported


def test_import_errors_into_a_project_being_created_is_refused(tmp_path):
    """The project folder named by --project is protected before its log exists."""
    folder = tmp_path / "new-project"
    folder.mkdir()
    rows = write_facts_csv(tmp_path / "rows.csv", [FACTS[4], ("Peru", "The capital is", "Quito", "Lima")])
    result = run_nse("import", rows, "--project", folder, "--errors", folder / "project.sqlite", timeout=120)
    assert "--errors" in error_line(result.returncode, result.stderr)
    assert not (folder / "project.sqlite").exists()


@pytest.mark.parametrize("how", ["same name", "symlink", "hard link"])
def test_import_errors_never_replace_the_imported_file(tmp_path, project_folder, how):
    rows = write_facts_csv(tmp_path / "mine.csv", [FACTS[4], ("Peru", "The capital is", "Quito", "Lima")])
    original = rows.read_bytes()
    target = {"same name": rows, "symlink": tmp_path / "link.csv", "hard link": tmp_path / "hard.csv"}[how]
    if how == "symlink":
        target.symlink_to(rows)
    elif how == "hard link":
        target.hardlink_to(rows)
    result = run_nse("import", rows, "--project", project_folder, "--errors", target, timeout=120)
    assert "--errors" in error_line(result.returncode, result.stderr)
    assert rows.read_bytes() == original
    with Project.open(project_folder, read_only=True) as project:
        assert project.queries.count_facts() == 3  # refused before importing


def test_ordinary_output_paths_still_work(tmp_path, project_folder):
    """Next to the project, or in its folder under another name, is fine."""
    result = run_nse("log", "--project", project_folder, "--csv", project_folder / "facts.csv", timeout=120)
    assert result.returncode == 0, result.stderr
    assert (project_folder / "facts.csv").is_file() and (project_folder / "facts-batches.csv").is_file()
    check_output_path(tmp_path / "elsewhere.csv", inputs=[tmp_path / "rows.csv"], projects=[project_folder])


def test_the_engine_refuses_without_being_told_which_project(project_folder):
    """A caller that names no project (the app's chart export) is still refused a project's files."""
    with pytest.raises(OutputFileError, match="edit log"):
        check_output_path(project_folder / "project.sqlite-shm")
    with pytest.raises(OutputFileError, match="editing-state"):
        check_output_path(project_folder / "state" / "chart.png")


def test_a_state_folder_that_is_a_link_is_still_the_projects(tmp_path, project_folder):
    """P/state -> elsewhere: a state file is refused by its name in the project and where it lies."""
    elsewhere = tmp_path / "elsewhere"
    shutil.move(project_folder / "state", elsewhere)
    (project_folder / "state").symlink_to(elsewhere)
    before = _fingerprint(project_folder)
    state = next(elsewhere.iterdir())
    for target in (project_folder / "state" / state.name, state, elsewhere / "notes.csv"):
        result = run_nse("log", "--project", project_folder, "--csv", target, timeout=120)
        assert str(target) in error_line(result.returncode, result.stderr)
        assert "editing-state" in result.stderr
    _assert_project_intact(project_folder, before)


def test_a_log_that_is_a_link_is_still_the_projects(tmp_path, project_folder):
    """P/project.sqlite -> store/mylog.db: neither the link nor the file it points to is written."""
    store = tmp_path / "store"
    store.mkdir()
    with Project.open(project_folder):  # checkpointed: the log is one file
        pass
    shutil.move(project_folder / "project.sqlite", store / "mylog.db")
    (project_folder / "project.sqlite").symlink_to(store / "mylog.db")
    before = _fingerprint(project_folder)
    for target in (project_folder / "project.sqlite", store / "mylog.db"):
        result = run_nse("log", "--project", project_folder, "--csv", target, timeout=120)
        assert str(target) in error_line(result.returncode, result.stderr)
        assert "edit log" in result.stderr
    assert (project_folder / "project.sqlite").is_symlink()
    _assert_project_intact(project_folder, before)


@pytest.mark.parametrize("name", ["Project.sqlite", "PROJECT.SQLITE-wal", "STATE/chart.png", "State",
                                  ".NSE-LOCK", ".Project.sqlite.tmp-12"])
def test_project_files_are_refused_in_any_case(project_folder, name):
    """On the disks of Windows and macOS these names are the project's own files."""
    with pytest.raises(OutputFileError, match="destroy the project"):
        check_output_path(project_folder / name)


@pytest.mark.parametrize("command", ["log", "import"])
def test_a_dash_is_not_taken_for_a_file_name(tmp_path, project_folder, command):
    """`--csv -` / `--errors -` would write files named `-` and `--batches.csv` in the current folder."""
    here = tmp_path / "here"
    here.mkdir()
    if command == "log":
        result = run_nse("log", "--project", project_folder, "--csv", "-", cwd=here, timeout=120)
    else:
        rows = write_facts_csv(tmp_path / "rows.csv", [FACTS[4]])
        result = run_nse("import", rows, "--project", project_folder, "--errors", "-", cwd=here, timeout=120)
    assert "'-'" in error_line(result.returncode, result.stderr)
    assert list(here.iterdir()) == []
