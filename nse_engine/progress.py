"""Progress reporting and cooperative cancellation shared by every long engine operation."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

from nse_engine.errors import Cancelled


@dataclass(frozen=True)
class Progress:
    """One progress record: which phase a job is in and how far along it is."""

    phase: str  # e.g. "computing statistics", "target states", "layer updates", "evaluation"
    done: int
    total: int | None  # None when the amount of work is unknown
    message: str = ""
    elapsed_s: float = 0.0
    shares_model: bool = False  # other work may use the model between this phase's steps (pause points)

    @property
    def fraction(self) -> float | None:
        if not self.total:
            return None
        return min(1.0, self.done / self.total)

    @property
    def eta_s(self) -> float | None:
        """Seconds left in this phase, extrapolated from the rate so far."""
        frac = self.fraction
        if not frac or self.elapsed_s <= 0:
            return None
        return self.elapsed_s * (1.0 - frac) / frac


class JobControl:
    """Passed into engine operations: they report progress through it and poll it for cancellation.

    The app wires `on_progress` to a Qt signal, the CLI to a progress bar; engine code never
    knows which. `on_pause`, when given, is called at the pause points of a long operation: the
    app's worker runs waiting short jobs (chat replies, queue edits) there, on the same thread, so
    one thread still owns the model and nothing runs concurrently with it.
    """

    def __init__(
        self, on_progress: Callable[[Progress], None] | None = None, on_pause: Callable[[], None] | None = None
    ) -> None:
        self._on_progress = on_progress
        self._on_pause = on_pause
        self._sharing = 0  # inside `sharing()`: pause points may hand the model to other work
        self._holding = 0  # inside `holding()`: they may not (the model is not as others expect it)
        self._cancel = threading.Event()
        self._phase_started: dict[str, float] = {}

    def report(self, phase: str, done: int, total: int | None = None, message: str = "") -> None:
        """Send a progress record, then stop the job if cancellation was requested."""
        if done == 0 or phase not in self._phase_started:  # a phase starting (again) restarts its clock
            self._phase_started[phase] = time.monotonic()
        started = self._phase_started[phase]
        if self._on_progress is not None:
            self._on_progress(Progress(phase, done, total, message, time.monotonic() - started, self.shares_model))
        self.check_cancelled()

    @property
    def shares_model(self) -> bool:
        """Whether pause points hand the model to other work now."""
        return self._on_pause is not None and self._sharing > 0 and self._holding == 0

    @contextmanager
    def sharing(self) -> Iterator[None]:
        """A stretch of work whose pause points leave the model exactly as a job expects it: no
        hook installed, weights as committed (the key statistics between their batches)."""
        self._sharing += 1
        try:
            yield
        finally:
            self._sharing -= 1

    @contextmanager
    def holding(self) -> Iterator[None]:
        """No pause point hands the model over in here (weights rewound to the original ones)."""
        self._holding += 1
        try:
            yield
        finally:
            self._holding -= 1

    def pause_point(self) -> None:
        """Let other work use the model now, if the caller allows it; then stop if cancelled.
        Call it only where the operation has no hook installed and its tensors stay untouched."""
        if self.shares_model:
            self._on_pause()
        self.check_cancelled()

    def cancel(self) -> None:
        """Ask the running job to stop at its next check (thread-safe)."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check_cancelled(self) -> None:
        if self._cancel.is_set():
            raise Cancelled("cancelled by the user")


def silent() -> JobControl:
    """A control for callers that want neither progress nor cancellation."""
    return JobControl()
