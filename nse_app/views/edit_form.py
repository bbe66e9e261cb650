"""The Edit screen: one fact to write, validated as you type with the engine's own checks, and
a preview of what the model answers now for its prompt."""

from __future__ import annotations

import html

from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from nse_engine.facts import EditRequest
from nse_engine.errors import Cancelled
from nse_engine.store.validation import LIST_SEPARATOR, NEIGHBOR_ARROW, FactProblem, fact_from_fields, make_template

from nse_app import jobs
from nse_app.session import Session
from nse_app.worker import Job

_PREVIEW_DELAY_MS = 600


class EditForm(QWidget):
    """A form for the Session's project queue; it holds only the text being typed."""

    queued = Signal()  # a fact was added to the queue or saved

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._session = session
        self._editing_id: int | None = None
        self._preview_job: Job | None = None
        self.request: EditRequest | None = None

        self.subject = QLineEdit(placeholderText="Danielle Darrieux")
        self.prompt = QLineEdit(placeholderText="The mother tongue of {} is")
        self.target_new = QLineEdit(placeholderText="English")
        self.target_true = QLineEdit(placeholderText="French (optional: the answer the model gives now)")
        self.relation = QLineEdit(placeholderText="mother tongue (optional)")
        self.paraphrases = QPlainTextEdit(placeholderText="One per line, with the subject written out:\n"
                                          "Danielle Darrieux's mother tongue is")
        self.neighborhood = QPlainTextEdit(placeholderText=f"One per line, prompt {NEIGHBOR_ARROW} answer that must not change:\n"
                                           f"The mother tongue of Léon Blum is {NEIGHBOR_ARROW} French")
        for box in (self.paraphrases, self.neighborhood):
            box.setMaximumHeight(90)
        self.fields: dict[str, QWidget] = {
            "subject": self.subject, "prompt": self.prompt, "target_new": self.target_new,
            "target_true": self.target_true, "relation": self.relation,
            "paraphrases": self.paraphrases, "neighborhood": self.neighborhood,
        }

        form_box = QGroupBox("Fact to write")
        form = QFormLayout(form_box)
        form.addRow("Subject", self.subject)
        form.addRow("Relation prompt", self.prompt)
        form.addRow("New object", self.target_new)
        form.addRow("True object", self.target_true)
        form.addRow("Relation name", self.relation)
        form.addRow("Paraphrases", self.paraphrases)
        form.addRow("Neighbourhood checks", self.neighborhood)

        self.problems_label = QLabel()
        self.problems_label.setObjectName("problems")
        self.problems_label.setWordWrap(True)
        self.preview_label = QLabel()
        self.preview_label.setObjectName("preview")
        self.preview_label.setWordWrap(True)
        preview_box = QGroupBox("What the model answers now")
        QVBoxLayout(preview_box).addWidget(self.preview_label)

        self.add_button = QPushButton("Add to queue")
        self.add_button.setObjectName("primary")
        self.add_button.setToolTip("Ctrl+Enter")
        self.add_button.clicked.connect(self.submit)
        self.cancel_edit_button = QPushButton("Stop editing")
        self.cancel_edit_button.clicked.connect(self.clear)
        self.cancel_edit_button.hide()
        clear_button = QPushButton("Clear")
        clear_button.clicked.connect(self.clear)
        buttons = QHBoxLayout()
        buttons.addStretch()
        buttons.addWidget(clear_button)
        buttons.addWidget(self.cancel_edit_button)
        buttons.addWidget(self.add_button)
        for keys in ("Ctrl+Return", "Ctrl+Enter"):
            QShortcut(QKeySequence(keys), self, activated=self.submit)

        layout = QVBoxLayout(self)
        layout.addWidget(form_box)
        layout.addWidget(self.problems_label)
        layout.addWidget(preview_box)
        layout.addLayout(buttons)
        layout.addStretch()

        self._preview_timer = QTimer(self, singleShot=True, interval=_PREVIEW_DELAY_MS)
        self._preview_timer.timeout.connect(self.refresh_preview)
        for widget in self.fields.values():
            widget.textChanged.connect(self.validate)
        for widget in (self.subject, self.prompt):
            widget.textChanged.connect(self._preview_timer.start)
        session.model_changed.connect(lambda _info: self._preview_timer.start())
        session.project_changed.connect(lambda _info: self.validate())
        self.validate()

    # ---- values ------------------------------------------------------------------------------

    def text_fields(self) -> dict[str, str]:
        """The form as the cells of one CSV row, the layout the engine's validation reads."""
        lines = {name: [line for line in box.toPlainText().splitlines() if line.strip()]
                 for name, box in (("paraphrases", self.paraphrases), ("neighborhood", self.neighborhood))}
        return {
            "subject": self.subject.text(),
            "prompt": self.prompt.text(),
            "target_new": self.target_new.text(),
            "target_true": self.target_true.text(),
            "relation": self.relation.text(),
            "paraphrases": f" {LIST_SEPARATOR} ".join(lines["paraphrases"]),
            "neighborhood": f" {LIST_SEPARATOR} ".join(lines["neighborhood"]),
        }

    def set_fields(self, fact: EditRequest) -> None:
        self.subject.setText(fact.subject)
        self.prompt.setText(fact.prompt)
        self.target_new.setText(fact.target_new)
        self.target_true.setText(fact.target_true or "")
        self.relation.setText(fact.relation or "")
        self.paraphrases.setPlainText("\n".join(fact.paraphrases))
        self.neighborhood.setPlainText("\n".join(f"{n.prompt} {NEIGHBOR_ARROW} {n.target}" for n in fact.neighborhood))

    def validate(self) -> list[FactProblem]:
        """Check the form with the engine's rules and mark the fields that have problems."""
        self.request, problems = fact_from_fields(self.text_fields())
        untouched = not any(self.text_fields().values())
        bad = {p.field for p in problems}
        for name, widget in self.fields.items():
            widget.setProperty("invalid", name in bad and not untouched)
            widget.style().unpolish(widget)
            widget.style().polish(widget)
        if untouched:
            self.problems_label.setText("Write a fact: a subject, a prompt with {} or the subject, and a new object.")
        elif problems:
            self.problems_label.setText("\n".join(f"• {p.field}: {p.message}" for p in problems))
        else:
            self.problems_label.setText("✓ Ready to queue.")
        self.problems_label.setProperty("ok", not problems and not untouched)
        self.problems_label.style().unpolish(self.problems_label)
        self.problems_label.style().polish(self.problems_label)
        self.add_button.setEnabled(self.request is not None and self._session.project_info is not None)
        return problems

    # ---- flows -------------------------------------------------------------------------------

    def edit_existing(self, fact: EditRequest) -> None:
        """Load a queued fact for editing; Save writes it back in place."""
        self._editing_id = fact.fact_id
        self.set_fields(fact)
        self.add_button.setText(f"Save fact #{self._editing_id}")
        self.cancel_edit_button.show()

    def correct(self, fact: EditRequest) -> None:
        """Start a new fact from a question the model answered wrongly: its subject, prompt, relation
        and (when given) the model's current answer filled in, the new object left for the user to type."""
        self.clear()
        self.set_fields(fact)
        self.target_new.setFocus()

    def clear(self) -> None:
        self._editing_id = None
        for widget in self.fields.values():
            widget.clear()
        self.add_button.setText("Add to queue")
        self.cancel_edit_button.hide()

    def submit(self) -> None:
        if self.validate() or self.request is None:
            return
        self._session.start(self._submit(self.request, self._editing_id))

    async def _submit(self, request: EditRequest, fact_id: int | None) -> None:
        if fact_id is None:
            await self._session.queue_facts([request])
        else:
            await self._session.update_fact(fact_id, request)
        self.clear()
        self.queued.emit()

    def refresh_preview(self) -> None:
        if self._session.model_info is None:
            self.preview_label.setText("Load a model to see its current answer.")
            return
        request = self.request
        fields = self.text_fields()
        if request is None:
            template, problem = make_template(fields["subject"].strip(), fields["prompt"].strip())
            if problem or not fields["subject"].strip():
                self.preview_label.setText("A subject and a prompt are needed for a preview.")
                return
            text = template.format(fields["subject"].strip())
        else:
            text = request.text
        if self._preview_job is not None:
            self._preview_job.cancel()
        self.preview_label.setText(f"<i>{html.escape(text)} …</i>")
        self._preview_job = self._session.job(jobs.complete, prompt=text)
        self._session.start(self._show_preview(self._preview_job, text))

    async def _show_preview(self, job: Job, prompt: str) -> None:
        """The answer, or why there is none; a preview replaced by a newer one shows nothing."""
        try:
            answer = await job
        except Cancelled:
            return
        except Exception as error:  # a preview is a hint: its failure is shown in place, not as a dialog
            self.preview_label.setText(f"No preview: {html.escape(str(error))}")
            return
        self.preview_label.setText(f"{html.escape(prompt)}<b>{html.escape(answer)}</b>")
