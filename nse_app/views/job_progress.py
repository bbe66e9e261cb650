"""The one progress area of the window (in the status bar): the running job's batch, step,
counts and time left, and its Cancel button."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QProgressBar, QWidget

from nse_engine.progress import Progress

from nse_app.session import WAITING_FOR_PREPARATION, QueueRun, Session
from nse_app.views.elided_label import ElidedLabel
from nse_app.views.wiring import push_button


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"about {max(seconds, 1)} s left"
    if seconds < 3600:
        return f"about {round(seconds / 60)} min left"
    return f"about {seconds // 3600} h {round(seconds % 3600 / 60):02d} min left"


def describe_progress(p: Progress, run: QueueRun | None = None) -> str:
    """"Batch 2 of 5 · target states 40/100 · about 3 min left": which batch of a queue run, the
    step and its counter (counters restart per step, so the step is always named), and the time
    left for the whole run once a batch has finished (before that, for this step)."""
    parts = [f"Batch {run.done + 1} of {run.batches}"] if run and run.batches > 1 else []
    parts.append(f"{p.phase} {p.done}/{p.total}" if p.total else p.phase)
    if p.message:
        parts.append(p.message)
    overall = run.eta_s() if run else None
    eta = format_eta(overall if overall is not None else p.eta_s)
    if eta:
        parts.append(eta if overall is not None or run is None else f"{eta} in this step")
    return " · ".join(parts)


class JobProgress(QWidget):
    """Shows the Session's long job (or the model's preparation) in the status bar, with Cancel."""

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._session = session
        self.bar = QProgressBar()
        self.bar.setTextVisible(False)
        self.bar.setMaximumHeight(14)
        self.label = ElidedLabel("Idle", mode=Qt.TextElideMode.ElideRight)
        self.label.setObjectName("progressLabel")
        self.cancel_button = push_button("Cancel", session.cancel, tooltip="Cancel the running job (Esc)")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.bar, 1)
        layout.addWidget(self.label, 3)  # the words need the room: "Batch 2 of 5 · target states 40/100 · …"
        layout.addWidget(self.cancel_button)
        session.progress.connect(self._show)
        session.busy_changed.connect(self._busy)
        session.preparation_changed.connect(lambda: self._busy(session.busy))
        self._busy(session.busy)

    def _show(self, p: Progress) -> None:
        if p.total:
            self.bar.setRange(0, 1000)
            self.bar.setValue(int(1000 * (p.fraction or 0.0)))
        else:
            self.bar.setRange(0, 0)  # unknown amount of work: a busy indicator
        session = self._session
        if p is session.preparation_progress:  # the background preparation, or a job waiting for it
            caption = WAITING_FOR_PREPARATION if session.job_waits else "One-time model preparation"
            self.label.setText(f"{caption} · {describe_progress(p)}")
        else:
            self.label.setText(describe_progress(p, session.queue_run))

    def _busy(self, busy: bool) -> None:
        preparing = self._session.preparing  # in the background: not busy, but shown here and cancellable
        self.cancel_button.setEnabled(busy or preparing)
        if preparing and self._session.preparation_progress is not None:
            self._show(self._session.preparation_progress)
        elif busy:
            self.bar.setRange(0, 0)
            self.label.setText("Starting…")
        else:
            self.bar.setRange(0, 1)
            self.bar.setValue(0)
            self.label.setText("Idle")
