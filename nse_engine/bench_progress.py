"""A benchmark's progress on disk, so a run stopped by a crash, Ctrl+C or the end of a session
resumes at the next round instead of starting again (1000 facts take hours on a CPU).

One folder holds the unedited model's scores (`unedited.json`, shared by every method run on the
same model and facts) and the rounds done so far of one run (`rounds.json` beside the editing
session's `session.safetensors`). A run resumes only from progress made with the same model,
facts, round size, method and settings: anything else starts afresh and replaces it.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from nse_engine.atomic import atomic_path
from nse_engine.editing.session import EditingSession
from nse_engine.errors import ProjectError
from nse_engine.evaluation.counterfact import EvalSummary
from nse_engine.model.loading import LoadedModel

log = logging.getLogger(__name__)


@dataclass
class RoundsDone:
    """What a benchmark has measured after each round: enough to finish the report later."""

    run: dict[str, object]  # what must match to resume (model, facts, rounds, method, settings)
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


class BenchProgress:
    """The progress folder of one benchmark (or of one comparison: its methods run one at a time)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.session_path = self.folder / "session.safetensors"

    def unedited(self, experiment: dict[str, object]) -> EvalSummary | None:
        """The unedited model's scores saved for this model and facts, or None."""
        saved = self._read("unedited.json")
        if saved is None or saved.get("experiment") != experiment:
            return None
        return EvalSummary.from_dict(saved["scores"])

    def save_unedited(self, experiment: dict[str, object], scores: EvalSummary) -> None:
        self._write("unedited.json", {"experiment": experiment, "scores": scores.to_dict()})

    def resume(self, loaded: LoadedModel, run: dict[str, object]) -> tuple[RoundsDone, EditingSession] | None:
        """The rounds done by an earlier run of `run` and its session, its edits written into the
        freshly loaded model; None when there are none to resume."""
        saved = self._read("rounds.json")
        if saved is None or saved.get("run") != run or not self.session_path.exists():
            return None
        done = RoundsDone(**{**saved, "applied": [tuple(a) for a in saved["applied"]]})
        try:
            session = EditingSession.from_state(loaded, self.session_path)
        except ProjectError as exc:  # a damaged save, or the same name for other weights
            log.warning("cannot resume from %s (%s); starting afresh", self.folder, exc)
            return None
        while len(session.rounds) > done.rounds_done:  # stopped between saving the session and the rounds
            session.undo_last_round()
        if len(session.rounds) != done.rounds_done:
            log.warning("the saved session in %s lacks rounds; starting afresh", self.folder)
            return None
        done.resumed_after.append(done.rounds_done)
        return done, session

    def save_round(self, done: RoundsDone, session: EditingSession) -> None:
        """Save after a round: the session first, so the rounds record never runs ahead of it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        session.save_state(self.session_path)
        self._write("rounds.json", asdict(done))

    def finish_run(self) -> None:
        """Forget the finished run's rounds (the unedited scores stay for the next method)."""
        for name in ("rounds.json", "session.safetensors"):
            (self.folder / name).unlink(missing_ok=True)

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

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
