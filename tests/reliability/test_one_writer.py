"""One writer per project: a second writer is refused with the name of the process that holds
the project; readers change nothing, so a reader during a commit cannot take its new state away."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from nse_engine.errors import ProjectError
from nse_engine.store import Project

from reliability.faults import (
    FACTS, NEW_STATE, cli, error_line, nse_env, paused_child, project_with_queue, run_nse, write_facts_csv,
)

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the child processes use POSIX signals")


@pytest.mark.parametrize("point", ["writing", "written", "renamed", "committing"])
def test_nse_log_during_a_commit_keeps_the_new_state(tmp_path, capsys, point):
    folder = tmp_path / "project"
    project_with_queue(folder)

    with paused_child(folder, "commit", point) as child:
        rc, out, err = cli(capsys, "log", "--project", folder)
        assert rc == 0, err
        assert "current state: the base model" in out
        child.resume()

    with Project.open(folder) as project:
        assert project.history.current_state_file().read_bytes() == NEW_STATE
        assert {f.status for f in project.queries.facts()} == {"applied"}


def test_a_second_writer_is_refused_and_told_which_process_holds_the_project(tmp_path, facts_csv):
    folder = tmp_path / "project"
    project_with_queue(folder)
    with Project.open(folder):
        result = run_nse("import", facts_csv, "--project", folder)
    message = error_line(result.returncode, result.stderr)
    assert f"pid {os.getpid()}" in message and "open" in message
    with Project.open(folder) as project:
        assert project.queries.count_facts() == 2


def test_a_project_opened_twice_in_one_process_is_refused(tmp_path):
    folder = tmp_path / "project"
    project_with_queue(folder)
    with Project.open(folder):
        with pytest.raises(ProjectError, match="already open in this process"):
            Project.open(folder)
    with Project.open(folder) as project:  # closing released it
        assert project.queries.count_facts() == 2


def test_readers_work_while_a_writer_holds_the_project(tmp_path, facts_csv):
    folder = tmp_path / "project"
    project_with_queue(folder)
    with Project.open(folder):
        log = run_nse("log", "--project", folder)
        dry_run = run_nse("import", facts_csv, "--project", folder, "--dry-run")
    assert log.returncode == 0 and "France" in log.stdout, log.stderr
    assert dry_run.returncode == 0 and "would import" in dry_run.stdout, dry_run.stderr


@pytest.mark.parametrize("trial", range(2))
def test_two_imports_at_once_lose_no_row(tmp_path, trial):
    folder = tmp_path / "new-project"
    files = [write_facts_csv(tmp_path / "a.csv", FACTS[:4]), write_facts_csv(tmp_path / "b.csv", FACTS[4:])]
    processes = [
        subprocess.Popen([sys.executable, "-m", "nse_engine.cli", "import", str(f), "--project", str(folder)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=nse_env())
        for f in files
    ]
    imported: set[str] = set()
    for process, path in zip(processes, files):
        out, err = process.communicate(timeout=120)
        if process.returncode == 0:
            imported |= {row.split(",")[0] for row in path.read_text().splitlines()[1:]}
        else:
            assert "pid" in error_line(process.returncode, err)
    assert imported, "at least one import gets the project"
    with Project.open(folder) as project:
        assert {f.request.subject for f in project.queries.facts()} == imported
