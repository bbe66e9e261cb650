"""The Model screen's card for the model's one-time preparation for editing: what it is, that it
is one-time and cached, its progress and time left, Cancel, and "Prepare now" once it stopped.
The project is open meanwhile; the card says what waits for the preparation and what does not."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QProgressBar, QVBoxLayout, QWidget

from nse_app.session import WAITING_FOR_PREPARATION, Session
from nse_app.views.elided_label import ElidedLabel
from nse_app.views.job_progress import describe_progress
from nse_app.views.wiring import push_button

ABOUT = ("One-time for this model, then cached: NSE derives its editing settings and measures the key "
         "statistics of its edited layers over general text (minutes on a CPU).")
MEANWHILE = "Meanwhile the project is open: queue facts, read the log and chat; a batch waits until this is done."
ONE_PIECE = ("This step runs in one piece: chat replies and queue changes wait until it ends (they run between "
             "the steps of the key statistics).")
NOT_DONE = ("Preparation is not done{why}. The project stays open; a batch prepares the model first, "
            "or start it now (it starts over).")


class PreparationCard(QFrame):
    """Shows the Session's model preparation; hidden when there is none to show."""

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._session = session
        self.setObjectName("preparationCard")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.title = ElidedLabel(mode=Qt.TextElideMode.ElideRight)  # a model's name may be any length
        font = self.title.font()
        font.setBold(True)
        self.title.setFont(font)
        self.about = QLabel(ABOUT)
        self.about.setWordWrap(True)
        self.about.setObjectName("hint")
        self.bar = QProgressBar()
        self.bar.setTextVisible(False)
        self.bar.setMaximumHeight(14)
        self.status = ElidedLabel(mode=Qt.TextElideMode.ElideRight)
        self.status.setObjectName("progressLabel")
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setObjectName("hint")
        self.cancel_button = push_button("Cancel preparation", session.cancel_preparation,
                                         tooltip="Stop preparing; the project stays open")
        self.prepare_button = push_button("Prepare now", session.prepare_model, name="primary")
        row = QHBoxLayout()
        row.addWidget(self.bar, 2)
        row.addWidget(self.status, 3)
        row.addWidget(self.cancel_button)
        row.addWidget(self.prepare_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 6, 10, 6)
        layout.setSpacing(4)
        layout.addWidget(self.title)
        layout.addWidget(self.about)
        layout.addLayout(row)
        layout.addWidget(self.note)
        session.preparation_changed.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        """Follow the Session: running (with its progress), stopped (cancelled or failed), or none.
        A preparation that reports no progress (everything cached) finishes without showing."""
        session = self._session
        state, progress = session.preparation, session.preparation_progress
        self.setVisible(state in ("cancelled", "failed") or (state == "running" and progress is not None))
        model = session.model_info.name if session.model_info else "the model"
        running = state == "running"
        self.title.setText(f"Preparing {model} for editing" if running else f"{model} is not prepared for editing yet")
        self.cancel_button.setVisible(running)
        self.prepare_button.setVisible(not running)
        if running and progress is not None:
            if progress.total:
                self.bar.setRange(0, 1000)
                self.bar.setValue(int(1000 * (progress.fraction or 0.0)))
            else:
                self.bar.setRange(0, 0)
            text = describe_progress(progress)
            self.status.setText(f"{WAITING_FOR_PREPARATION} {text}" if session.job_waits else text)
            self.note.setText(MEANWHILE if progress.shares_model else ONE_PIECE)
        elif not running:
            self.bar.setRange(0, 1)
            self.bar.setValue(0)
            self.status.setText("Failed: " + session.preparation_error if state == "failed" else "Cancelled")
            self.note.setText(NOT_DONE.format(why=" (it failed)" if state == "failed" else " (cancelled)"))
