"""When the current state file is missing or damaged: which earlier state can replace it.

Each batch writes a new state file, and older ones stay in `state/`. An earlier state S can stand
in for the damaged current one when its checksum matches and every batch S holds is still in
effect: then going back to S is the same as undoing the batches committed after it, and the
log can record exactly that. A state that holds a batch undone since never qualifies; the base
model (no state) always does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from sqlite_utils import Database

from nse_engine.atomic import sha256_file
from nse_engine.store.log_queries import LogQueries
from nse_engine.store.records import StateFile


class _BatchRow(NamedTuple):
    id: int
    state_id: int | None
    undo_state_id: int | None
    undone: bool


@dataclass(frozen=True)
class Recovery:
    """A damaged current state, and the last good state that can replace it."""

    damaged: StateFile
    problem: str  # e.g. "is missing"
    good: StateFile | None  # None: the base model
    undo_batch_ids: tuple[int, ...]  # batches in effect that the good state does not hold

    def describe(self, folder: Path) -> str:
        """What happened and what to run, for an error message or `nse log`."""
        target = (f"the last good state is {self.good.path.name} (saved by batch {self.good.batch_id})"
                  if self.good else "no earlier state file is intact, so the last good state is the base model")
        if self.undo_batch_ids:
            undone = f"{_batches(self.undo_batch_ids)} will be recorded as undone and {_it(self.undo_batch_ids)} facts can be queued again"
        else:
            undone = "no batch needs undoing"
        return (
            f"the project's current state file {self.damaged.path.name} {self.problem}. "
            f"Put it back from a backup, or go back to the last good state: {target}; run "
            f"`nse rollback --project {folder}` to use it ({undone})."
        )


def state_problem(state: StateFile) -> str | None:
    """Why a state file cannot be used (missing, or not what was saved), or None when it is intact."""
    if not state.path.is_file():
        return "is missing"
    try:
        digest = sha256_file(state.path)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if digest != state.sha256:
        return "is damaged (its checksum differs from the one recorded when it was saved)"
    return None


def find_recovery(db: Database, queries: LogQueries, known_problem: str | None = None) -> Recovery | None:
    """The recovery for a damaged current state; None when the current state is intact (or the base model).

    `known_problem` declares the current state unusable although its checksum matches (it was saved
    damaged: restoring it gives NaN weights).
    """
    states = queries.state_files(include_discarded=False)
    if not states:
        return None
    current = states[-1]
    problem = known_problem or state_problem(current)
    if problem is None:
        return None
    rows = [_BatchRow(r[0], r[1], r[2], r[3] is not None)
            for r in db.execute("SELECT id, state_id, undo_state_id, undone_at FROM batches ORDER BY id")]
    in_effect = {b.id for b in rows if not b.undone and b.state_id is not None}
    for candidate in reversed(states[:-1]):
        held = _held_by(candidate.id, rows)
        if held <= in_effect and state_problem(candidate) is None:
            return Recovery(current, problem, candidate, tuple(sorted(in_effect - held)))
    return Recovery(current, problem, None, tuple(sorted(in_effect)))


def _held_by(state_id: int, rows: list[_BatchRow]) -> set[int]:
    """The batches whose edits the state file `state_id` holds (state ids grow with time)."""
    return {b.id for b in rows if b.state_id is not None and b.state_id <= state_id and not _undone_by(b, state_id)}


def _undone_by(batch: _BatchRow, state_id: int) -> bool:
    if not batch.undone:
        return False
    rolled_back = batch.undo_state_id is None or batch.undo_state_id < batch.state_id  # type: ignore[operator]
    return rolled_back or batch.undo_state_id <= state_id  # type: ignore[operator]


def _batches(ids: tuple[int, ...]) -> str:
    return f"batch {ids[0]}" if len(ids) == 1 else f"batches {', '.join(map(str, ids))}"


def _it(ids: tuple[int, ...]) -> str:
    return "its" if len(ids) == 1 else "their"
