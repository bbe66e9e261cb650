"""Creating a project on a nearly full disk either creates a whole log or leaves no log at all:
the log is built under a temporary name and its SQLite WAL must be folded into it before the
rename (a checkpoint that fails for want of space used to be silent, and the log was renamed
into place without the tables it held)."""

from __future__ import annotations

import shutil

import pytest

from nse_engine.errors import NseError
from nse_engine.store import Project

from reliability.faults import small_disk


def test_creating_a_project_on_a_nearly_full_disk_never_leaves_a_damaged_log(tmp_path):
    with small_disk(tmp_path / "disk", "4m") as disk:
        outcomes = set()
        for free in range(0, 1_000_000, 8_192):
            folder = disk.path / f"project-{free}"
            folder.mkdir()
            filler = disk.fill(leave_free=free)
            try:
                Project.create(folder).close()
                outcomes.add("created")
            except NseError:
                outcomes.add("refused")
            finally:
                filler.unlink()
            if (folder / "project.sqlite").exists():
                try:
                    Project.open(folder, read_only=True).close()
                except NseError as exc:
                    pytest.fail(f"with {free:,} bytes free the new log is damaged: {exc}")
            shutil.rmtree(folder)
        assert outcomes == {"created", "refused"}, outcomes  # the sweep met both
