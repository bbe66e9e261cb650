"""Fault-making helpers: `nse` runs in subprocesses, small or read-only disks, damaged files."""

from __future__ import annotations

import csv
import os
import shutil
import struct
import subprocess
import sys
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import pytest

from tiny import tiny_hparams, tiny_loaded

REPO = Path(__file__).resolve().parents[2]

FACTS = [
    ("France", "The capital of {} is", "Rome", "Paris"),
    ("Germany", "The capital of {} is", "Madrid", "Berlin"),
    ("Italy", "The capital of {} is", "Oslo", "Rome"),
    ("Spain", "The capital of {} is", "Paris", "Madrid"),
    ("Danielle Darrieux", "The mother tongue of {} is", "English", "French"),
    ("Toko Yasuda", "{} plays the", "piano", "guitar"),
    ("Apple", "{} was founded by", "Bill Gates", "Steve Jobs"),
    ("Tokyo", "{} is in", "China", "Japan"),
]


def write_facts_csv(path: Path, facts: Sequence[tuple[str, ...]]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["subject", "prompt", "target_new", "target_true"])
        writer.writerows(facts)
    return path


def nse_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "TOKENIZERS_PARALLELISM": "false", **extra}


def run_nse(*args: object, timeout: float = 300, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess:
    """`nse ARGS` in a fresh process (the caches and data folders of this test), in `cwd` if given."""
    return subprocess.run(
        [sys.executable, "-m", "nse_engine.cli", *map(str, args)],
        capture_output=True, text=True, env=nse_env(**env), timeout=timeout, cwd=cwd,
    )


def error_line(returncode: int, stderr: str) -> str:
    """The one `error:` line of a failed command (exit 2, no traceback); fails the test otherwise."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if "error:" in line]
    assert returncode == 2 and len(lines) == 1, (returncode, stderr)
    return lines[0]


def cli(capsys, *args: object) -> tuple[int, str, str]:
    """`nse ARGS` in this process: (exit status, stdout, stderr); argparse's exit included."""
    from nse_engine.cli import main

    try:
        rc = main([str(a) for a in args])
    except SystemExit as exc:
        rc = exc.code if isinstance(exc.code, int) else 2
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


# -- disks -------------------------------------------------------------------------------------


def _mount(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["mount", *args], capture_output=True, text=True)


@dataclass
class SmallDisk:
    """A tmpfs of a fixed size mounted at `path`."""

    path: Path

    def free_bytes(self) -> int:
        stats = os.statvfs(self.path)
        return stats.f_bavail * stats.f_frsize

    def fill(self, leave_free: int = 0) -> Path:
        """Take all but `leave_free` bytes with a filler file; remove it to free the space."""
        filler = self.path / f"filler-{uuid.uuid4().hex[:8]}"
        size = max(0, self.free_bytes() - leave_free)
        with open(filler, "wb") as fh:
            try:
                fh.write(b"\0" * size)
                fh.flush()
            except OSError:
                pass
        return filler

    def remount(self, mode: str) -> None:
        result = _mount("-o", f"remount,{mode}", str(self.path))
        assert result.returncode == 0, result.stderr


@contextmanager
def small_disk(folder: Path, size: str = "2m") -> Iterator[SmallDisk]:
    """A real small file system (tmpfs): only where this process may mount one (root)."""
    if sys.platform != "linux" or os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a full or read-only disk needs a tmpfs: run the tests as root (mount -t tmpfs)")
    folder.mkdir(parents=True, exist_ok=True)
    result = _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder))
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    try:
        yield SmallDisk(folder)
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


@contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """`folder` (already holding a project) as on read-only media.

    As root, permissions do not stop writes: the folder is copied onto a tmpfs that is then
    remounted read-only, and mounted over `folder`. Otherwise the folder and its files lose
    their write permission.
    """
    if os.geteuid() == 0:
        with small_disk(folder.with_name(folder.name + "-media"), "16m") as disk:
            shutil.copytree(folder, disk.path, dirs_exist_ok=True)
            disk.remount("ro")
            result = _mount("--bind", str(disk.path), str(folder))
            assert result.returncode == 0, result.stderr
            try:
                yield
            finally:
                subprocess.run(["umount", "-l", str(folder)], capture_output=True)
        return
    paths = [folder, *folder.rglob("*")]
    modes = {p: p.stat().st_mode for p in paths}
    for p in paths:
        p.chmod(modes[p] & ~0o222)
    try:
        yield
    finally:
        for p in reversed(paths):
            p.chmod(modes[p])


# -- damaged files -----------------------------------------------------------------------------


def safetensors_data_offset(path: Path) -> int:
    """Where a safetensors file's tensor bytes start (after its 8-byte length and JSON header)."""
    with open(path, "rb") as fh:
        (header_length,) = struct.unpack("<Q", fh.read(8))
    return 8 + header_length


def overwrite(path: Path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(data)


def flip_byte(path: Path, offset: int) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        value = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([value[0] ^ 0xFF]))


# -- tiny edited projects ----------------------------------------------------------------------


def new_workspace(folder: Path):
    """A new project on a tiny model with `tiny_hparams` (Workspace.open would derive settings)."""
    from nse_engine.editing.session import EditingSession
    from nse_engine.store import Project
    from nse_engine.workspace import Workspace

    loaded = tiny_loaded()
    project = Project.create(folder)
    session = EditingSession(loaded, tiny_hparams())
    project.meta.check_base_model(loaded.source, session.base_fingerprint)
    workspace = Workspace(loaded, session, project)
    workspace.measure_fluency = False
    return workspace


def edit_requests(facts: Sequence[tuple[str, ...]]):
    from nse_engine.facts import EditRequest

    return [EditRequest(*fact) for fact in facts]


def edited_weights(workspace) -> dict[int, object]:
    session = workspace.session
    return {layer: session.points.weight(layer).detach().clone() for layer in session.layers}


# -- many real `nse` runs ------------------------------------------------------------------------

ZYGOTE = Path(__file__).with_name("edit_zygote.py")


@dataclass
class RunResult:
    status: int  # exit status, or -signal when killed
    killed: bool  # the run was still going when it was killed
    seconds: float
    out: str
    err: str


class NseServer:
    """`nse` runs forked from one process that imported the engine once (edit_zygote.py)."""

    def __init__(self, scratch: Path, **env: str) -> None:
        self.scratch = scratch
        self.runs = 0
        self.process = subprocess.Popen([sys.executable, str(ZYGOTE)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True, env=nse_env(**env))
        assert self.process.stdout.readline().strip() == "READY"

    def run(self, *args: object, kill_after: float | None = None, file_size_limit: int | None = None) -> RunResult:
        import json

        self.runs += 1
        out, err = self.scratch / f"run-{self.runs}.out", self.scratch / f"run-{self.runs}.err"
        request = {"argv": [str(a) for a in args], "out": str(out), "err": str(err), "kill_after": kill_after,
                   "file_size_limit": file_size_limit}
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        answer = json.loads(self.process.stdout.readline())
        texts = [path.read_text() if path.exists() else "" for path in (out, err)]  # killed before opening them
        return RunResult(answer["status"], answer["killed"], answer["seconds"], *texts)

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)


# -- a commit paused at a step of the crash protocol ---------------------------------------------

CHILD = REPO / "tests" / "store" / "crash_child.py"
NEW_STATE = b"state after the batch " * 4096  # what crash_child.py writes as a batch's state


def project_with_queue(folder: Path) -> None:
    """A new project with two queued facts, as crash_child.py expects."""
    from nse_engine.store import Project

    with Project.create(folder, "tiny-gpt2", "fp-1") as project:
        project.queue.queue_facts(edit_requests(FACTS[:2]))


def make_project(folder: Path, batches: int = 0, queued: int = 0) -> Path:
    """A project with `batches` applied batches of one fact each (so as many state files, each
    naming its project and batch), then `queued` more facts in the queue."""
    from nse_engine.store import Project

    with Project.create(folder) as project:
        for i in range(batches):
            commit_facts(project, FACTS[i:i + 1], f"state of {folder.name} after batch {i + 1}".encode())
        project.queue.queue_facts(edit_requests(FACTS[batches:batches + queued]))
    return folder


def commit_facts(project, facts: Sequence[tuple[str, ...]], state: bytes) -> None:
    """Queue `facts` and record them as one applied batch whose state file holds `state`."""
    from datetime import datetime, timezone

    from nse_engine.facts import FactOutcome

    project.queue.queue_facts(edit_requests(facts))
    moment = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)
    outcomes = [FactOutcome(r, True) for r in project.queue.queued_facts()]
    project.history.commit_batch(outcomes, "nse", {}, moment, moment, lambda path: path.write_bytes(state))


class PausedChild:
    """A batch commit (or undo) stopped at a named point of the crash protocol, until resumed."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.process = process

    def resume(self) -> str:
        out, err = self.process.communicate("\n", timeout=60)
        assert self.process.returncode == 0 and "DONE" in out, err
        return out


@contextmanager
def paused_child(folder: Path, operation: str, point: str) -> Iterator[PausedChild]:
    process = subprocess.Popen(
        [sys.executable, str(CHILD), str(folder), operation], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env=nse_env(NSE_KILL_AT=point, NSE_RESUME="1"),
    )
    try:
        line = process.stdout.readline().strip()
        assert line == f"AT {point}", f"child did not reach {point}: {line!r} {process.stderr.read()}"
        yield PausedChild(process)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
