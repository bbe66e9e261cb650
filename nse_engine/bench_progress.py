"""A benchmark's progress on disk, so a run stopped by a crash, Ctrl+C or the end of a session
resumes at the next round instead of starting again (1000 facts take hours on a CPU).

One folder holds the unedited model's scores (`unedited.json`, shared by every method run on the
same model and facts) and the rounds done so far of one run (`rounds.json` beside the editing
session's `session.safetensors`). A run resumes only from progress made on the same base weights,
device, dtype, facts, round size, method and settings; other progress is deleted and the run
starts afresh.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

from nse_engine.atomic import atomic_path
from nse_engine.editing.session import EditingSession
from nse_engine.errors import ProjectError
from nse_engine.evaluation.counterfact import EvalSummary
from nse_engine.facts import EditRequest
from nse_engine.model.loading import LoadedModel

log = logging.getLogger(__name__)

PROGRESS_FORMAT = 1
RUN_FILES = ("rounds.json", "session.safetensors")  # one run's rounds; "unedited.json" outlives it


@dataclass
class RoundsDone:
    """What a benchmark has measured after each round: enough to finish the report later."""

    run: dict[str, object]  # what must match to resume (base weights, facts, rounds, method, settings)
    rounds_done: int = 0
    seconds_by_phase: dict[str, float] = field(default_factory=dict)
    edit_seconds: float = 0.0
    retention_curve: list[dict[str, float]] = field(default_factory=list)
    generation_curve: list[dict[str, float]] = field(default_factory=list)
    applied: list[tuple[int, int]] = field(default_factory=list)  # (round index, index into the cases)
    not_applied: list[dict[str, object]] = field(default_factory=list)
    refreshed_per_round: list[int] = field(default_factory=list)
    peak_rss_mb: float = 0.0  # the highest of the earlier processes that ran these rounds
    per_fact_baseline: dict[str, float] | None = None
    resumed_after: list[int] = field(default_factory=list)  # rounds done when each later process took over
    processes: list[dict[str, str]] = field(default_factory=list)  # provenance of each process that ran rounds
    checkpoints: list[dict[str, object]] = field(default_factory=list)  # one point per checkpoint (bench_checkpoints)
    checkpoint_samples: dict[str, list[int]] = field(default_factory=dict)  # drawn at the first checkpoint


class BenchProgress:
    """The progress folder of one benchmark (or of one comparison: its methods run one at a time)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.session_path = self.folder / "session.safetensors"
        self.rounds_path = self.folder / "rounds.json"

    def unedited(self, experiment: dict[str, object]) -> EvalSummary | None:
        """The unedited model's scores saved for this experiment (base weights, facts), or None."""
        saved = self._read("unedited.json")
        if saved is None or saved.get("experiment") != experiment:
            return None
        try:
            return EvalSummary.from_dict(saved["scores"])
        except (KeyError, TypeError) as exc:  # written by another version
            log.warning("recomputing the unedited scores: %s is of another format (%s)", self.folder, exc)
            return None

    def save_unedited(self, experiment: dict[str, object], scores: EvalSummary) -> None:
        self._write("unedited.json", {"format": PROGRESS_FORMAT, "experiment": experiment, "scores": scores.to_dict()})

    def resume(self, loaded: LoadedModel, run: dict[str, object],
               cases: list[EditRequest]) -> tuple[RoundsDone, EditingSession] | None:
        """The rounds done by an earlier process of `run` and its session, their edits written into
        the freshly loaded model; None (and the stale rounds deleted) when there is nothing to resume."""
        saved = self._read("rounds.json")
        if saved is None:
            return None
        done = self._rounds_done(saved, run)
        if done is None or not self.session_path.exists():
            self.finish_run()
            return None
        try:
            session = EditingSession.from_state(loaded, self.session_path)
        except ProjectError as exc:  # a damaged save, or other base weights
            log.warning("cannot resume from %s (%s); starting afresh", self.folder, exc)
            self.finish_run()
            return None
        while len(session.rounds) > done.rounds_done:  # stopped between saving the session and the rounds
            session.undo_last_round()
        if not _same_rounds(session, run, cases):
            log.warning("the saved session in %s is not this run's; starting afresh", self.folder)
            session.ledger.rounds.clear()
            session.ledger.rebuild()  # the model's weights back to the base
            self.finish_run()
            return None
        done.resumed_after.append(done.rounds_done)
        return done, session

    def save_round(self, done: RoundsDone, session: EditingSession) -> None:
        """Save after a round: the session first, so the rounds record never runs ahead of it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        session.save_state(self.session_path)
        self._write("rounds.json", {"format": PROGRESS_FORMAT, **asdict(done)})

    def save_checkpoint(self, done: RoundsDone) -> None:
        """Save a checkpoint's point with the rounds it follows (their session is saved already), so
        a resumed run neither measures it again nor loses it."""
        self._write("rounds.json", {"format": PROGRESS_FORMAT, **asdict(done)})

    def finish_run(self) -> None:
        """Forget a run's rounds (the unedited scores stay for the next method)."""
        for name in RUN_FILES:
            (self.folder / name).unlink(missing_ok=True)

    def remove(self) -> None:
        """Delete what this module wrote, and the folder when nothing else is in it."""
        for name in (*RUN_FILES, "unedited.json"):
            (self.folder / name).unlink(missing_ok=True)
        if self.folder.is_dir() and not any(self.folder.iterdir()):
            self.folder.rmdir()

    def _rounds_done(self, saved: dict, run: dict[str, object]) -> RoundsDone | None:
        if saved.pop("format", None) != PROGRESS_FORMAT or saved.get("run") != run:
            return None
        try:
            return RoundsDone(**{**saved, "applied": [tuple(a) for a in saved["applied"]]})
        except (KeyError, TypeError):
            return None

    def _read(self, name: str) -> dict | None:
        path = self.folder / name
        if not path.exists():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable benchmark progress %s: %s", path, exc)
            return None

    def _write(self, name: str, data: dict) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.folder / name) as tmp:
            tmp.write_text(json.dumps(data), encoding="utf-8")


def _same_rounds(session: EditingSession, run: dict[str, object], cases: list[EditRequest]) -> bool:
    """The session was made with the run's settings and its rounds edited the run's facts, in order."""
    if session.hparams.to_dict() != run["settings"]:
        return False
    size = int(run["batch_size"])
    return all([r.to_dict() for r in record.requests] == [c.to_dict() for c in cases[i * size : (i + 1) * size]]
               for i, record in enumerate(session.rounds))
