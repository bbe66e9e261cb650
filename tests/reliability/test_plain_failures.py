"""Things users do that used to end in a traceback or a hang, each now a plain answer: `nse … | head`,
a file named `state` where the project keeps its state folder, the project folder moved away during
a batch, and a named pipe or a device given as the fact file."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from nse_engine.errors import ImportFormatError, StorageError
from nse_engine.fact_files.fact_file import FactFile
from nse_engine.facts import FactOutcome
from nse_engine.store import Project

from reliability.faults import FACTS, error_line, make_project, nse_env, run_nse, write_facts_csv

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def project_folder(tmp_path) -> Path:
    return make_project(tmp_path / "project", queued=3)


def _run_with_closed_stdout(*args: object) -> tuple[int, str]:
    """`nse ARGS | head -0`: the reader of stdout is gone before the command writes anything."""
    process = subprocess.Popen([sys.executable, "-m", "nse_engine.cli", *map(str, args)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=nse_env())
    process.stdout.close()
    _out, err = process.communicate(timeout=120)
    return process.returncode, err


@pytest.mark.parametrize("command", ["log", "import"])
def test_a_closed_pipe_ends_the_command_quietly(tmp_path, project_folder, command):
    if command == "log":
        args = ["log", "--project", project_folder]
    else:
        args = ["import", write_facts_csv(tmp_path / "more.csv", FACTS[3:6]), "--project", project_folder]
    rc, err = _run_with_closed_stdout(*args)
    assert "Traceback" not in err and "BrokenPipe" not in err and "Exception ignored" not in err, err
    assert rc == 141
    if command == "import":  # the import itself was done before the report could not be shown
        with Project.open(project_folder, read_only=True) as project:
            assert project.queries.count_facts() == 6


@pytest.mark.parametrize("command", ["import", "rollback"])
def test_a_file_named_state_is_one_error_line(tmp_path, project_folder, command):
    shutil.rmtree(project_folder / "state")
    (project_folder / "state").write_text("not a folder")
    if command == "import":
        result = run_nse("import", write_facts_csv(tmp_path / "more.csv", FACTS[3:5]), "--project", project_folder,
                         timeout=120)
    else:
        result = run_nse("rollback", "--project", project_folder, timeout=120)
    line = error_line(result.returncode, result.stderr)
    assert str(project_folder / "state") in line and "rename or move" in line
    assert (project_folder / "state").read_text() == "not a folder"


def test_the_project_folder_moved_away_during_a_batch(tmp_path, project_folder):
    moved = tmp_path / "moved-project"

    def write_state_after_the_move(path: Path) -> None:
        shutil.move(project_folder, moved)  # the user moves the folder while the batch runs
        path.write_bytes(b"edited state")

    with Project.open(project_folder) as project:
        outcomes = [FactOutcome(r, True) for r in project.queue.queued_facts()]
        with pytest.raises(StorageError, match="moved or deleted") as failure:
            project.history.commit_batch(outcomes, "nse", {}, T0, T0, write_state_after_the_move)
    assert str(project_folder) in str(failure.value) and "not recorded" in str(failure.value)
    with Project.open(moved) as project:  # all or nothing: no batch, every fact still queued, no state file
        assert project.queries.batches() == [] and project.queries.count_facts("queued") == 3
        assert list(project.state_dir.iterdir()) == []


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "facts.csv"
    os.mkfifo(path)
    yield path
    try:  # a reader still blocked on the pipe (the code before the fix) gets its end of file
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:
        pass


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_named_pipe_as_the_fact_file_is_refused_at_once(tmp_path, project_folder, fifo, dry_run):
    args = ["import", fifo, "--project", project_folder, *(["--dry-run"] if dry_run else [])]
    try:
        result = run_nse(*args, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("nse import waited forever on a named pipe")
    line = error_line(result.returncode, result.stderr)
    assert str(fifo) in line and "named pipe" in line


@pytest.mark.parametrize("kind", ["device", "folder"])
def test_a_device_or_a_folder_is_not_a_fact_file(tmp_path, kind):
    path = Path("/dev/zero") if kind == "device" else tmp_path
    if not path.exists():
        pytest.skip("no /dev/zero here")
    with pytest.raises(ImportFormatError, match=kind):
        FactFile(path)
