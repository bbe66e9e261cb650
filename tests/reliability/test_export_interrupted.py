"""An export that replaces a folder (after the app's confirmation) and dies between its two
renames leaves the user's old contents set aside as `.NAME.replaced-PID`; the next export to
that place puts them back, or, where a new folder has taken the name, keeps them and says where."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from nse_engine.errors import OutputFileError
from nse_engine.export_folder import check_export_target, staged_folder

from reliability.faults import nse_env

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")

# Replaces `target` by a new export and is killed right after the old folder was set aside.
_DIES_BETWEEN_THE_RENAMES = """
import os, signal, sys
from pathlib import Path
from nse_engine.export_folder import staged_folder

os.replace = lambda *args: os.kill(os.getpid(), signal.SIGKILL)
with staged_folder(Path(sys.argv[1]), replace=True) as staging:
    (staging / "config.json").write_text("the new export")
"""


@pytest.fixture
def interrupted(tmp_path) -> Path:
    """A folder (with glob characters in its name) whose replacing export was killed midway."""
    target = tmp_path / "edited [v2]"
    target.mkdir()
    (target / "weights.bin").write_bytes(b"the user's old weights")
    process = subprocess.run([sys.executable, "-c", _DIES_BETWEEN_THE_RENAMES, str(target)], env=nse_env(),
                             capture_output=True, text=True, timeout=120)
    assert process.returncode == -signal.SIGKILL, process.stderr
    assert not target.exists() and len(list(tmp_path.glob(".edited*.replaced-*"))) == 1
    return target


def test_the_old_folder_is_put_back_by_the_next_export(interrupted, caplog):
    with caplog.at_level(logging.WARNING), pytest.raises(OutputFileError, match="not empty"):
        check_export_target(interrupted, {})  # judged with its old contents back
    assert (interrupted / "weights.bin").read_bytes() == b"the user's old weights"
    assert [p.name for p in interrupted.parent.iterdir()] == [interrupted.name]  # the staging folder went too
    assert "put" in caplog.text and str(interrupted) in caplog.text


def test_a_new_folder_in_its_place_keeps_the_old_one_aside_and_says_where(interrupted, caplog):
    interrupted.mkdir()
    with caplog.at_level(logging.WARNING):
        with staged_folder(interrupted) as staging:
            (staging / "config.json").write_text("the next export")
    (aside,) = interrupted.parent.glob(".edited*.replaced-*")
    assert (aside / "weights.bin").read_bytes() == b"the user's old weights"
    assert (interrupted / "config.json").read_text() == "the next export"
    assert str(aside) in caplog.text
