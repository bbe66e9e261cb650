"""Where a result came from: the commit, the command line and the date.

Every result JSON (`nse bench`, benchmarks/, research/) records them, so a figure quoted in the
docs can be traced to the code and the command that produced it and rerun.
"""

from __future__ import annotations

import json
import logging
import shlex
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from nse_engine.atomic import atomic_path

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parent.parent
GIT_TIMEOUT_S = 10


def _git(*args: str) -> str | None:
    """`git args` in the repository, or None where git is missing, slow or fails."""
    try:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                              timeout=GIT_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        log.debug("git %s failed: %s", " ".join(args), exc)
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def commit() -> str:
    """HEAD's hash, with "-dirty" when tracked files have uncommitted changes; "unknown" outside
    a git checkout (an installed package or bundle) or without git."""
    if not (REPO / ".git").exists():
        return "unknown"
    head = _git("rev-parse", "HEAD")
    if not head:
        return "unknown"
    changes = _git("status", "--porcelain", "--untracked-files=no")
    return f"{head}-dirty" if changes else head


# The code a process runs is the code it imported at its start: a result written hours later,
# after commits in between, still names the commit it ran.
COMMIT_AT_START = commit()


def command_line() -> str:
    """The command as typed (interpreter and `-m` included), paths inside the repository made
    relative to it, so it can be rerun from the repository root."""
    argv = getattr(sys, "orig_argv", None) or sys.argv
    return shlex.join(_relative(arg) for arg in argv)


def _relative(arg: str) -> str:
    path = Path(arg)
    if path.is_absolute() and path.is_relative_to(REPO):
        return str(path.relative_to(REPO))
    return arg


def provenance() -> dict[str, str]:
    """{"commit" (at the process's start), "command", "date" (ISO 8601, UTC)} for the result being
    written now."""
    return {
        "commit": COMMIT_AT_START,
        "command": command_line(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def write_result(path: Path, data: dict) -> None:
    """Write `data` as indented JSON with its provenance (replacing any older one), atomically,
    so a run stopped mid-write leaves the previous file intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps({**data, "provenance": provenance()}, indent=2) + "\n", encoding="utf-8")
