"""Runs one batch commit or undo on a project and stops at a named point, waiting to be killed.

    python crash_child.py FOLDER commit|undo     (NSE_KILL_AT selects the point)

Points: writing (state file half written), written (before fsync and rename), renamed (state
file in place, nothing recorded), committing (transaction open, COMMIT about to run),
committed (the call returned). At the point it prints `AT <point>` and sleeps; with NSE_RESUME
set it waits for a line on stdin instead, then goes on and prints `DONE`.
"""

import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import nse_engine.atomic
from nse_engine.facts import FactOutcome
from nse_engine.store import FactEvaluation, Project

NEW_STATE = b"state after the batch " * 4096
RESTORED_STATE = b"state before the batch " * 4096

kill_at = os.environ["NSE_KILL_AT"]


def pause(point: str) -> None:
    if point == kill_at:
        print(f"AT {point}", flush=True)
        if os.environ.get("NSE_RESUME"):
            sys.stdin.readline()
        else:
            time.sleep(60)


def state_writer(content: bytes):
    def write_state(path: Path) -> None:
        with open(path, "wb") as fh:
            fh.write(content[: len(content) // 2])
            fh.flush()
            pause("writing")
            fh.write(content[len(content) // 2 :])
        pause("written")
        armed.append(True)

    return write_state


armed: list[bool] = []
original_fsync_dir = nse_engine.atomic.fsync_dir


def fsync_dir_then_pause(folder: Path) -> None:
    original_fsync_dir(folder)
    pause("renamed")


def before_statement(sql: str) -> None:
    if armed and sql.strip().upper() == "COMMIT":
        pause("committing")


nse_engine.atomic.fsync_dir = fsync_dir_then_pause

folder, operation = Path(sys.argv[1]), sys.argv[2]
project = Project.open(folder)
project._db.conn.set_trace_callback(before_statement)
if operation == "commit":
    queued = project.queue.queued_facts()
    now = datetime.now(timezone.utc)
    project.history.commit_batch(
        [FactOutcome(r, applied=True) for r in queued],
        "nse", {"layers": [4, 5]}, now, now, state_writer(NEW_STATE),
        [FactEvaluation(r.fact_id, True, 0.9, 0.01) for r in queued],
    )
else:
    project.history.undo_last_batch(state_writer(RESTORED_STATE))
pause("committed")
print("DONE", flush=True)
