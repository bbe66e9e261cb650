"""The Edit screen: one fact to write, validated as you type with the engine's own checks (in the
form's words, once a field was touched; a counter as a text nears its limit), and a preview of what
the model answers now for its prompt. Text a user typed is shown wrapped, never widening the window."""

from __future__ import annotations

import html
import re

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from nse_engine.facts import EditRequest
from nse_engine.errors import Cancelled
from nse_engine.fact_files.validation import (
    LIST_FIELDS,
    LIST_SEPARATOR,
    MAX_CHARACTERS,
    NEIGHBOR_ARROW,
    FactProblem,
    fact_from_fields,
    make_template,
)

from nse_app import jobs
from nse_app.session import Session
from nse_app.views.wiring import push_button
from nse_app.worker import Job

_PREVIEW_DELAY_MS = 600
COUNTER_FROM = 0.8  # a field's counter shows once its text is this share of its limit
LABELS = {
    "subject": "Subject", "prompt": "Relation prompt", "target_new": "New object", "target_true": "True object",
    "relation": "Relation name", "paraphrases": "Paraphrases", "questions": "Questions (chat)",
    "neighborhood": "Neighbourhood checks",
}
"""The form's label of each field: its rows and its messages use the same words."""
_UNBROKEN = re.compile(r"\S{24}")


def form_message(problem: FactProblem) -> str:
    """A problem in the form's words: "New object is empty", not "target_new: is empty"."""
    message = problem.message
    for field in ("target_new", "target_true"):
        message = message.replace(field, f"the {LABELS[field].lower()}")
    return f"{LABELS.get(problem.field, problem.field)} {message}"


def wrappable(text: str) -> str:
    """`text` with a break opportunity in every long unbroken run, so a label wraps it instead of
    asking the window for the run's whole width."""
    return _UNBROKEN.sub(lambda run: run.group() + "\u200b", text)


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
        self.questions = QPlainTextEdit(placeholderText="One per line, as you would ask in chat (the first is asked "
                                        "to check the edit):\nWhat is the mother tongue of Danielle Darrieux?")
        self.neighborhood = QPlainTextEdit(placeholderText=f"One per line, prompt {NEIGHBOR_ARROW} answer that must not change:\n"
                                           f"The mother tongue of Léon Blum is {NEIGHBOR_ARROW} French")
        for box in (self.paraphrases, self.questions, self.neighborhood):
            box.setMaximumHeight(90)
        self.fields: dict[str, QWidget] = {
            "subject": self.subject, "prompt": self.prompt, "target_new": self.target_new,
            "target_true": self.target_true, "relation": self.relation,
            "paraphrases": self.paraphrases, "questions": self.questions, "neighborhood": self.neighborhood,
        }
        self.touched: set[str] = set()  # fields the user typed in or left: only their problems are shown
        self._filling = False  # set_fields and clear are not the user typing
        self.counters: dict[str, QLabel] = {}

        form_box = QGroupBox("Fact to write")
        form = QFormLayout(form_box)
        for name, widget in self.fields.items():
            counter = QLabel(objectName="counter")
            counter.hide()
            self.counters[name] = counter
            row = QHBoxLayout()
            row.addWidget(widget, 1)
            row.addWidget(counter, 0, Qt.AlignmentFlag.AlignTop)
            form.addRow(LABELS[name], row)

        self.problems_label = QLabel()
        self.problems_label.setObjectName("problems")
        self.problems_label.setTextFormat(Qt.TextFormat.PlainText)
        self.problems_label.setWordWrap(True)
        self.preview_label = QLabel()
        self.preview_label.setObjectName("preview")
        self.preview_label.setWordWrap(True)
        preview_box = QGroupBox("What the model answers now")
        QVBoxLayout(preview_box).addWidget(self.preview_label)

        self.add_button = push_button("Add to queue", self.submit, name="primary")
        self.cancel_edit_button = push_button("Stop editing", self.clear)
        self.cancel_edit_button.hide()
        clear_button = push_button("Clear", self.clear)
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
        for name, widget in self.fields.items():
            widget.textChanged.connect(lambda *_, name=name: self._typed(name))
            if isinstance(widget, QLineEdit):  # leaving a field empty touches it too
                widget.editingFinished.connect(lambda *_, name=name: self._typed(name))
        for widget in (self.subject, self.prompt):
            widget.textChanged.connect(self._preview_timer.start)
        session.model_changed.connect(lambda _info: self._preview_timer.start())
        session.project_changed.connect(lambda _info: self.validate())
        self.validate()

    # ---- values ------------------------------------------------------------------------------

    def text_fields(self) -> dict[str, str]:
        """The form as the cells of one CSV row, the layout the engine's validation reads."""
        lines = {name: [line for line in self.fields[name].toPlainText().splitlines() if line.strip()]
                 for name in LIST_FIELDS}
        return {
            "subject": self.subject.text(),
            "prompt": self.prompt.text(),
            "target_new": self.target_new.text(),
            "target_true": self.target_true.text(),
            "relation": self.relation.text(),
            "paraphrases": f" {LIST_SEPARATOR} ".join(lines["paraphrases"]),
            "questions": f" {LIST_SEPARATOR} ".join(lines["questions"]),
            "neighborhood": f" {LIST_SEPARATOR} ".join(lines["neighborhood"]),
        }

    def set_fields(self, fact: EditRequest) -> None:
        self._filling = True
        try:
            self.subject.setText(fact.subject)
            self.prompt.setText(fact.prompt)
            self.target_new.setText(fact.target_new)
            self.target_true.setText(fact.target_true or "")
            self.relation.setText(fact.relation or "")
            self.paraphrases.setPlainText("\n".join(fact.paraphrases))
            self.questions.setPlainText("\n".join(fact.questions))
            self.neighborhood.setPlainText("\n".join(f"{n.prompt} {NEIGHBOR_ARROW} {n.target}" for n in fact.neighborhood))
        finally:
            self._filling = False
        self.touched = {name for name, value in self.text_fields().items() if value}  # a loaded value counts as written
        self.validate()

    def _typed(self, name: str) -> None:
        if not self._filling:
            self.touched.add(name)
            self.validate()

    def validate(self) -> list[FactProblem]:
        """Check the form with the engine's rules; show the problems of the fields touched so far,
        mark those fields, and say on the Add button why it is disabled."""
        fields = self.text_fields()
        self.request, problems = fact_from_fields(fields)
        shown = [p for p in problems if p.field in self.touched]
        missing = [LABELS[p.field] for p in problems if p.code == "empty" and p.field not in self.touched]
        for name, widget in self.fields.items():
            widget.setProperty("invalid", any(p.field == name for p in shown))
            _restyle(widget)
            self._show_counter(name, fields[name])
        if shown:
            text = "\n".join(f"• {form_message(p)}" for p in shown)
        elif problems and not self.touched:
            text = "Write a fact: a subject, a prompt with {} or the subject, and a new object."
        elif problems:
            text = f"Still to write: {', '.join(missing)}." if missing else ""
        else:
            text = "✓ Ready to queue."
        self.problems_label.setText(wrappable(text))
        self.problems_label.setProperty("ok", not problems)
        self.problems_label.setProperty("hint", bool(problems) and not shown)
        _restyle(self.problems_label)
        has_project = self._session.project_info is not None
        self.add_button.setEnabled(self.request is not None and has_project)
        if not has_project:
            self.add_button.setToolTip("Open or create a project first (Model screen)")
        elif problems:
            self.add_button.setToolTip("Not ready: " + "; ".join(form_message(p) for p in problems))
        else:
            self.add_button.setToolTip("Add this fact to the queue (Ctrl+Enter)")
        return problems

    def _show_counter(self, name: str, value: str) -> None:
        """The characters of a field (of its longest line, for a list) against its limit, once near it."""
        length = max((len(line.strip()) for line in value.split(LIST_SEPARATOR)), default=0) \
            if name in LIST_FIELDS else len(value.strip())
        limit = MAX_CHARACTERS[name]
        counter = self.counters[name]
        counter.setVisible(length >= COUNTER_FROM * limit)
        counter.setText(f"{length:,}/{limit:,}")
        counter.setProperty("over", length > limit)
        _restyle(counter)

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
        self._filling = True
        try:
            for widget in self.fields.values():
                widget.clear()
        finally:
            self._filling = False
        self.touched = set()
        self.add_button.setText("Add to queue")
        self.cancel_edit_button.hide()
        self.validate()

    def submit(self) -> None:
        """Queue the fact; if it is not ready (Ctrl+Enter works while Add is disabled), say what is missing."""
        self.touched = set(self.fields)
        if self.validate() or self.request is None:
            return
        if self._session.project_info is None:
            self.problems_label.setText("Open or create a project first (Model screen); the fact stays here.")
            self.problems_label.setProperty("ok", False)
            _restyle(self.problems_label)
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
        subject, prompt = fields["subject"].strip(), fields["prompt"].strip()
        if len(subject) > MAX_CHARACTERS["subject"] or len(prompt) > MAX_CHARACTERS["prompt"]:
            self.preview_label.setText("Shorten the subject or the prompt for a preview.")
            return
        if request is None:
            template, problem = make_template(subject, prompt)
            if problem or not subject:
                self.preview_label.setText("A subject and a prompt are needed for a preview.")
                return
            text = template.format(subject)
        else:
            text = request.text
        if self._preview_job is not None:
            self._preview_job.cancel()
        self.preview_label.setText(f"<i>{html.escape(wrappable(text))} …</i>")
        self._preview_job = self._session.job(jobs.complete, prompt=text)
        self._session.start(self._show_preview(self._preview_job, text))

    async def _show_preview(self, job: Job, prompt: str) -> None:
        """The answer, or why there is none; a preview replaced by a newer one shows nothing."""
        try:
            answer = await job
        except Cancelled:
            return
        except Exception as error:  # a preview is a hint: its failure is shown in place, not as a dialog
            self.preview_label.setText(f"No preview: {html.escape(wrappable(str(error)))}")
            return
        self.preview_label.setText(f"{html.escape(wrappable(prompt))}<b>{html.escape(wrappable(answer))}</b>")


def _restyle(widget: QWidget) -> None:
    """Apply the style sheet again after a dynamic property changed."""
    widget.style().unpolish(widget)
    widget.style().polish(widget)
