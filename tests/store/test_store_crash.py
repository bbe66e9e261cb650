"""Killing the process at any point of a batch commit or undo leaves a log that matches its state files."""

import hashlib
import os
import signal
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from nse_engine.facts import EditRequest, FactOutcome
from nse_engine.store import Project

CHILD = Path(__file__).with_name("crash_child.py")
REPO = Path(__file__).resolve().parents[2]
NEW_STATE = b"state after the batch " * 4096
RESTORED_STATE = b"state before the batch " * 4096
FIRST_STATE = b"state of the first batch"

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")


def _project_with_queue(folder: Path) -> None:
    with Project.create(folder, "tiny-gpt2", "fp-1") as project:
        project.queue.queue_facts([
            EditRequest("France", "The capital of {} is", "Rome", "Paris"),
            EditRequest("Germany", "The capital of {} is", "Madrid", "Berlin"),
        ])


def _project_with_batch(folder: Path) -> None:
    _project_with_queue(folder)
    with Project.open(folder) as project:
        now = datetime.now(timezone.utc)
        outcomes = [FactOutcome(r, applied=True) for r in project.queue.queued_facts()]
        project.history.commit_batch(outcomes, "nse", {}, now, now, lambda p: p.write_bytes(FIRST_STATE))


def _run_child_until(folder: Path, operation: str, point: str) -> None:
    env = {**os.environ, "NSE_KILL_AT": point, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(folder), operation], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    try:
        line = child.stdout.readline().decode().strip()
        assert line == f"AT {point}", f"child did not reach {point}: {line!r} {child.stderr.read().decode()}"
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=10) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def _assert_log_matches_disk(project: Project) -> None:
    """Every file in state/ is named by the log, every named file exists and has its checksum."""
    on_disk = {p.name for p in project.state_dir.iterdir()}
    assert on_disk == {s.path.name for s in project.queries.state_files()}
    for state in project.queries.state_files():
        assert hashlib.sha256(state.path.read_bytes()).hexdigest() == state.sha256
    project.history.verify_current_state()


@pytest.mark.parametrize(
    "point, committed",
    [("writing", False), ("written", False), ("renamed", False), ("committing", False), ("committed", True)],
)
def test_killed_batch_commit_leaves_old_or_new_state(tmp_path, point, committed):
    folder = tmp_path / "project"
    _project_with_queue(folder)

    _run_child_until(folder, "commit", point)

    with Project.open(folder) as project:
        _assert_log_matches_disk(project)
        statuses = {f.status for f in project.queries.facts()}
        if committed:
            (batch,) = project.queries.batches()
            assert statuses == {"applied"}
            assert project.history.current_state_file().read_bytes() == NEW_STATE
            assert batch.state_sha256 == hashlib.sha256(NEW_STATE).hexdigest()
            assert len(project.queries.evaluations(batch_id=batch.id)) == 2
        else:
            assert project.queries.batches() == []
            assert statuses == {"queued"}
            assert project.history.current_state_file() is None
            assert list(project.state_dir.iterdir()) == []
            assert project.queries.evaluations() == []


@pytest.mark.parametrize(
    "point, committed",
    [("writing", False), ("renamed", False), ("committing", False), ("committed", True)],
)
def test_killed_undo_leaves_old_or_new_state(tmp_path, point, committed):
    folder = tmp_path / "project"
    _project_with_batch(folder)

    _run_child_until(folder, "undo", point)

    with Project.open(folder) as project:
        _assert_log_matches_disk(project)
        (batch,) = project.queries.batches()
        statuses = {f.status for f in project.queries.facts()}
        if committed:
            assert batch.undone and statuses == {"undone"}
            assert project.history.current_state_file().read_bytes() == RESTORED_STATE
        else:
            assert not batch.undone and statuses == {"applied"}
            assert project.history.current_state_file().read_bytes() == FIRST_STATE


def test_work_goes_on_after_a_crash(tmp_path):
    folder = tmp_path / "project"
    _project_with_queue(folder)
    _run_child_until(folder, "commit", "renamed")

    with Project.open(folder) as project:
        now = datetime.now(timezone.utc)
        outcomes = [FactOutcome(r, applied=True) for r in project.queue.queued_facts()]
        batch = project.history.commit_batch(outcomes, "nse", {}, now, now, lambda p: p.write_bytes(b"retry"))
        assert project.history.current_state_file().read_bytes() == b"retry"
        assert batch.state_file == project.history.current_state_file().name
