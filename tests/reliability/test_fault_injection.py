"""Faults beyond the named kill points: real `nse edit` runs killed at random moments, a reader and
a second writer at every step of a commit, a full disk at each write, a damaged byte in each
stored file. After each fault: nothing committed is lost, log and state files agree, and the next
run goes on from there.

The kill test runs NSE_FAULT_RUNS kills (default 50) from seed NSE_FAULT_SEED (default 22); a
longer run is `NSE_FAULT_RUNS=500 .venv/bin/python -m pytest tests/reliability/test_fault_injection.py`.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from safetensors import safe_open

from nse_engine.errors import NseError, ProjectLockedError
from nse_engine.facts import FactOutcome
from nse_engine.store import Project
from nse_engine.workspace import Workspace

from reliability.faults import (
    FACTS, NEW_STATE, NseServer, cli, edit_requests, error_line, flip_byte, new_workspace, paused_child,
    project_with_queue, small_disk, tiny_loaded, write_facts_csv,
)

FAULT_RUNS = int(os.environ.get("NSE_FAULT_RUNS", "50"))
FAULT_SEED = int(os.environ.get("NSE_FAULT_SEED", "22"))
KILL_FACTS = FACTS[:4]  # two batches of two: a whole run takes a few seconds

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="forks and kills processes (POSIX)")


@pytest.fixture(scope="module")
def server(tmp_path_factory, _shared_cache):
    """One fork server for the module (its caches and data folder named here, not inherited)."""
    runs = tmp_path_factory.mktemp("runs")
    nse = NseServer(runs, NSE_CACHE_DIR=str(_shared_cache), NSE_DATA_DIR=str(runs / "data"))
    yield nse
    nse.close()


def _edit(server: NseServer, model: Path, cases: Path, project: Path, **fault):
    return server.run("edit", "--model", model, "--cases", cases, "--project", project, "--batch-size", "2",
                      "--no-fluency", **fault)


def _assert_consistent(folder: Path, committed: set[int]) -> None:
    """The log holds every batch a run reported and each fact once; the files it names are intact
    and the current state holds exactly the facts the log calls applied."""
    if not (folder / "project.sqlite").exists():
        assert not committed
        return
    with Project.open(folder, read_only=True) as project:
        batches = {b.id: b for b in project.queries.batches()}
        assert committed <= {i for i, b in batches.items() if not b.undone}
        keys = [(f.request.subject, f.request.prompt, f.request.target_new) for f in project.queries.facts()
                if f.status in ("queued", "applied")]
        assert len(keys) == len(set(keys)), "a fact is queued or applied twice"
        ran = [fact_id for b in batches.values() for fact_id in b.fact_ids]
        assert len(ran) == len(set(ran)), "a fact ran in two batches"
        for state in project.queries.state_files():
            assert state.path.is_file()
        project.history.verify_current_state()
        current = project.queries.current_state()
        in_state = _applied_in_state(current.path) if current else set()
        assert in_state == {f.id for f in project.queries.facts(status="applied")}


def _applied_in_state(path: Path) -> set[int]:
    """The fact ids a state file records as applied (from its metadata, without loading a model)."""
    with safe_open(str(path), framework="pt") as fh:
        rounds = json.loads(fh.metadata()["rounds"])
    return {q["fact_id"] for r in rounds for q, o in zip(r["requests"], r["outcomes"]) if o["applied"]}


def _reported_batches(out: str) -> set[int]:
    return {int(n) for n in re.findall(r"^batch (\d+):", out, re.MULTILINE)}


def _assert_finished(folder: Path, facts: list[tuple[str, ...]], model_dir: Path | None = None) -> None:
    """Every fact ran exactly once and nothing is left over in state/; with `model_dir`, the state
    also restores onto the model with the log's applied facts."""
    with Project.open(folder) as project:  # a writer: leftovers of killed runs are removed
        statuses = {f.request.subject: f.status for f in project.queries.facts()}
        assert sorted(statuses) == sorted(f[0] for f in facts) and set(statuses.values()) <= {"applied", "failed"}
        assert {p.name for p in project.state_dir.iterdir()} == {s.path.name for s in project.queries.state_files()}
        applied = {f.id for f in project.queries.facts(status="applied")}
    if model_dir is not None:
        from nse_engine.model.loading import load_model

        workspace = Workspace.open(load_model(str(model_dir)), folder)
        with workspace.closing():
            restored = {o.request.fact_id for r in workspace.session.rounds for o in r.outcomes if o.applied}
            assert restored == applied


@pytest.mark.slow
def test_nse_edit_killed_at_random_moments(tmp_path, tiny_model_dir, server):
    rng = random.Random(FAULT_SEED)
    cases = write_facts_csv(tmp_path / "facts.csv", KILL_FACTS)
    assert _edit(server, tiny_model_dir, cases, tmp_path / "warm-up").status == 0  # caches settings and statistics
    whole = _edit(server, tiny_model_dir, cases, tmp_path / "timed")  # how long a whole run takes
    assert whole.status == 0, whole.err
    chain, folder, committed, killed = 0, tmp_path / "chain-0", set(), 0
    for _ in range(FAULT_RUNS):
        run = _edit(server, tiny_model_dir, cases, folder, kill_after=rng.uniform(0.0, whole.seconds))
        killed += run.killed
        assert run.status == 0 or run.killed, run.err
        assert "Traceback" not in run.err, run.err
        committed |= _reported_batches(run.out)
        _assert_consistent(folder, committed)
        if not run.killed:  # the chain got to the end: check it all and start another
            _assert_finished(folder, KILL_FACTS)
            chain += 1
            folder, committed = tmp_path / f"chain-{chain}", set()
    assert killed >= FAULT_RUNS // 3, f"only {killed} of {FAULT_RUNS} runs were killed before they ended"
    last = _edit(server, tiny_model_dir, cases, folder)
    assert last.status == 0, last.err
    _assert_finished(folder, KILL_FACTS, tiny_model_dir)


@pytest.mark.parametrize(
    "operation, point",
    [(op, point) for op in ("commit", "undo") for point in ("writing", "written", "renamed", "committing", "committed")],
)
def test_a_reader_and_a_second_writer_at_every_commit_step(tmp_path, capsys, facts_csv, operation, point):
    folder = tmp_path / "project"
    project_with_queue(folder)
    if operation == "undo":
        with Project.open(folder) as project:
            now = datetime.now(timezone.utc)
            project.history.commit_batch([FactOutcome(r, True) for r in project.queue.queued_facts()], "NSE", {}, now, now,
                                         lambda path: path.write_bytes(NEW_STATE))
    with paused_child(folder, operation, point) as child:
        rc, out, err = cli(capsys, "log", "--project", folder)
        assert rc == 0, err
        rc, out, err = cli(capsys, "import", facts_csv, "--project", folder, "--dry-run")
        assert rc in (0, 1) and "would import" in out, err
        with pytest.raises(ProjectLockedError, match=f"pid {child.process.pid}"):
            Project.open(folder)
        child.resume()
    with Project.open(folder) as project:
        assert {p.name for p in project.state_dir.iterdir()} == {s.path.name for s in project.queries.state_files()}
        project.history.verify_current_state()
        assert {f.status for f in project.queries.facts()} == ({"applied"} if operation == "commit" else {"undone"})


def _fault_sweep(tmp_path, server, model_dir, make_fault) -> None:
    """Runs with a fault that makes a different write fail each time; each one either completes or
    fails with one `error:` line, and leaves a consistent project that the next run continues."""
    cases = write_facts_csv(tmp_path / "facts.csv", KILL_FACTS)
    folder = make_fault.project
    committed: set[int] = set()
    failures = 0
    for fault in make_fault.faults():
        run = _edit(server, model_dir, cases, folder, **fault)
        make_fault.clear()
        committed |= _reported_batches(run.out)
        if run.status != 0:
            error_line(run.status, run.err)
            failures += 1
        _assert_consistent(folder, committed)
    assert failures, "no write failed: the sweep tested nothing"
    last = _edit(server, model_dir, cases, folder)
    assert last.status == 0, last.err
    _assert_finished(folder, KILL_FACTS, model_dir)


class _FullDisk:
    """A small tmpfs left with fewer free bytes each run."""

    def __init__(self, disk) -> None:
        self.disk = disk
        self.project = disk.path / "project"
        self.filler: Path | None = None

    def faults(self):
        for free in (0, 2_000, 8_000, 20_000, 40_000, 70_000, 110_000, 160_000, 240_000):
            self.filler = self.disk.fill(leave_free=free)
            yield {}

    def clear(self) -> None:
        if self.filler is not None:
            self.filler.unlink()
            self.filler = None


class _FileSizeLimit:
    """RLIMIT_FSIZE in the run's process: a write past the limit fails with EFBIG, as on a full disk."""

    def __init__(self, folder: Path) -> None:
        self.project = folder

    def faults(self):
        for limit in (4_096, 8_192, 16_384, 24_576, 32_768, 49_152, 65_536, 98_304, 131_072, 196_608):
            yield {"file_size_limit": limit}

    def clear(self) -> None:
        pass


@pytest.mark.slow
def test_a_full_disk_at_each_write(tmp_path, tiny_model_dir, server):
    with small_disk(tmp_path / "disk", "1m") as disk:
        _fault_sweep(tmp_path, server, tiny_model_dir, _FullDisk(disk))


def test_a_file_size_limit_at_each_write(tmp_path, tiny_model_dir, server):
    """The same sweep without a tmpfs, for machines where the tests cannot mount one."""
    _fault_sweep(tmp_path, server, tiny_model_dir, _FileSizeLimit(tmp_path / "project"))


def _offsets(path: Path, rng: random.Random) -> list[int]:
    size = path.stat().st_size
    return sorted({0, 20, 99, size // 2, size - 1, *(rng.randrange(size) for _ in range(3))})


def test_a_damaged_byte_in_each_stored_file(tmp_path, capsys):
    rng = random.Random(FAULT_SEED)
    original = tmp_path / "original"
    workspace = new_workspace(original)
    with workspace.closing():
        for start in (0, 2):
            workspace.run_batch(workspace.project.queue.queue_facts(edit_requests(FACTS[start : start + 2])))
        current = workspace.project.queries.current_state().path.name
    stored = [p for p in sorted(original.rglob("*")) if p.is_file() and p.stat().st_size]
    assert {p.name for p in stored} >= {"project.sqlite", "state-000001.safetensors", current}

    for path in stored:
        for offset in _offsets(path, rng):
            folder = tmp_path / "damaged"
            shutil.rmtree(folder, ignore_errors=True)
            shutil.copytree(original, folder)
            damaged = folder / path.relative_to(original)
            flip_byte(damaged, offset)

            rc, out, err = cli(capsys, "log", "--project", folder)
            assert rc == 0 or error_line(rc, err), err
            try:
                reopened = Workspace.open(tiny_loaded(), folder)
            except NseError as exc:
                assert "\n" not in str(exc)
                if damaged.name == current:  # every damaged byte of the current state is caught
                    assert "is damaged" in str(exc) and "nse rollback" in str(exc)
                    rc, out, err = cli(capsys, "rollback", "--project", folder)
                    assert rc == 0, err
                    reopened = Workspace.open(tiny_loaded(), folder)
                else:
                    continue
            else:
                assert damaged.name != current, f"a damaged byte at {offset} of {current} went unnoticed"
            reopened.measure_fluency = False
            try:
                with reopened.closing():  # the next batch goes on from what is there
                    ids = reopened.project.queue.queue_facts(edit_requests(FACTS[6:7]))
                    assert reopened.run_batch(ids).batch_id is not None
            except NseError as exc:  # a damaged log that only shows when written to: said plainly
                assert damaged.name == "project.sqlite" and "\n" not in str(exc), exc
