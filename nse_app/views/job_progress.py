"""A progress bar for the running long job: phase, counts, ETA, and a Cancel button."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QProgressBar, QPushButton, QWidget

from nse_engine.progress import Progress

from nse_app.session import Session
from nse_app.views.elided_label import ElidedLabel


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s left"
    return f"{seconds // 60} min {seconds % 60:02d} s left"


def describe_progress(p: Progress) -> str:
    parts = [p.phase]
    if p.total:
        parts.append(f"{p.done}/{p.total}")
    if p.message:
        parts.append(p.message)
    eta = format_eta(p.eta_s)
    if eta:
        parts.append(eta)
    return " · ".join(parts)


class JobProgress(QWidget):
    """Shows the Session's long job; several instances (status bar, Queue screen) stay in step."""

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._session = session
        self.bar = QProgressBar()
        self.bar.setTextVisible(False)
        self.bar.setMaximumHeight(14)
        self.label = ElidedLabel("Idle", mode=Qt.TextElideMode.ElideRight)
        self.label.setObjectName("progressLabel")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Cancel the running job (Esc)")
        self.cancel_button.clicked.connect(session.cancel)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.bar, 2)
        layout.addWidget(self.label, 3)
        layout.addWidget(self.cancel_button)
        session.progress.connect(self._show)
        session.busy_changed.connect(self._busy)
        self._busy(session.busy)

    def _show(self, p: Progress) -> None:
        if p.total:
            self.bar.setRange(0, 1000)
            self.bar.setValue(int(1000 * (p.fraction or 0.0)))
        else:
            self.bar.setRange(0, 0)  # unknown amount of work: a busy indicator
        self.label.setText(describe_progress(p))

    def _busy(self, busy: bool) -> None:
        self.cancel_button.setEnabled(busy)
        if busy:
            self.bar.setRange(0, 0)
            self.label.setText("Starting…")
        else:
            self.bar.setRange(0, 1)
            self.bar.setValue(0)
            self.label.setText("Idle")
