"""The Chat screen: talk to the edited model with tokens streamed as they come, a Stop button,
a side-by-side answer from the original (unedited) model in compare mode (each pane keeps its own
conversation, so the original never sees the edited model's replies), and "Correct this…"
(a button, and the reply's context menu), which turns a wrong answer to a fact question into a
new fact in the Edit form, with the words selected in the reply as the model's current answer.

Each message is a block of its own (chat_blocks.py): the question, and each reply under the name
of the model that wrote it, with Copy, shown as Markdown once complete."""

from __future__ import annotations

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from nse_engine.errors import Cancelled
from nse_engine.facts import EditRequest
from nse_engine.store.log_rows import BatchChanges

from nse_app import jobs
from nse_app.diagnostics import show_error
from nse_app.session import Session
from nse_app.views.chat_blocks import ChatPane, ReplyMessage
from nse_app.views.wiring import menu_action, push_button, show_job_result
from nse_app.worker import Job

PANES = ("edited", "original")
_TYPED_QUESTION = ("A reply to a typed question cannot be corrected here: it names no subject and prompt. "
                   "Ask about an edited fact (the box above), then correct that reply")
_NO_REPLY_YET = "Ask about an edited fact (the box above): a wrong answer to it can then be written as a new fact"


class ChatView(QWidget):
    """A conversation with the Session's model; it keeps only the transcript."""

    correct_requested = Signal(object)  # an EditRequest: the fact asked about, no new object, the selection as true one

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._session = session
        # each pane's own conversation: the original model never sees the edited model's replies
        self.conversations: dict[str, list[dict[str, str]]] = {name: [] for name in PANES}
        self._turn: tuple[str, ...] = ()  # the panes answering the question being answered
        self._job: Job | None = None
        self._facts: list[EditRequest] = []
        self._asked: EditRequest | None = None  # the fact the question being answered checks
        self.replied_to: EditRequest | None = None  # the fact the last complete reply answers
        self._selected: ReplyMessage | None = None  # the edited model's reply words are selected in
        self._streaming: dict[str, ReplyMessage] = {}  # the reply block each answering pane streams into
        self.answers: dict[str, str] = {}  # the last reply of each pane, as streamed

        self.compare = QCheckBox("Compare with the original model")
        self.compare.setToolTip("Also answer with the unedited weights, side by side")
        self.compare.toggled.connect(self._show_compare)
        self.fact_box = QComboBox()
        self.fact_box.setMinimumWidth(280)
        self.fact_box.setPlaceholderText("Ask about an edited fact…")
        self.ask_button = push_button("Ask", lambda: self._ask_index(self.fact_box.currentIndex()))
        self.max_tokens = QSpinBox(minimum=1, maximum=2048, value=96)
        self.max_tokens.setPrefix("up to ")
        self.max_tokens.setSuffix(" tokens")
        self.max_tokens.setToolTip("Longest reply")
        clear = push_button("New conversation", self.clear)
        top = QHBoxLayout()
        top.addWidget(self.compare)
        top.addWidget(self.max_tokens)
        top.addStretch()
        top.addWidget(self.fact_box)
        top.addWidget(self.ask_button)
        top.addWidget(clear)

        self.panes: dict[str, ChatPane] = {}
        self.boxes: dict[str, QGroupBox] = {}
        split = QSplitter(Qt.Orientation.Horizontal)
        for name, title in (("edited", "Edited model"), ("original", "Original model (unedited weights)")):
            box = QGroupBox(title)
            pane = ChatPane()
            pane.setObjectName(f"chat_{name}")
            QVBoxLayout(box).addWidget(pane)
            split.addWidget(box)
            self.panes[name] = pane
            self.boxes[name] = box
        self.boxes["original"].hide()

        self.input = QLineEdit(placeholderText="Ask the model something… (Enter to send)")
        self.input.returnPressed.connect(self.send)
        self.send_button = push_button("Send", self.send, name="primary")
        self.stop_button = push_button("Stop", self.stop, tooltip="Stop the reply (Esc)")
        self.correct_button = push_button("Correct this…", self.correct)
        self.correct_action = menu_action("Correct this…", self.correct, self)
        self.hint = QLabel()
        self.hint.setObjectName("hint")
        bottom = QHBoxLayout()
        bottom.addWidget(self.input, 1)
        bottom.addWidget(self.send_button)
        bottom.addWidget(self.stop_button)
        bottom.addWidget(self.correct_button)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(split, 1)
        layout.addWidget(self.hint)
        layout.addLayout(bottom)

        session.changed.connect(self.apply_changes)
        session.project_changed.connect(lambda _info: self.refresh_facts())
        session.model_changed.connect(lambda _info: self.clear())
        self._update()

    @property
    def streaming(self) -> bool:
        return self._job is not None

    # ---- flows -------------------------------------------------------------------------------

    def send(self, text: str | None = None, fact: EditRequest | None = None) -> None:
        """Send `text` (or what is typed); `fact` is the fact the question checks, if it does."""
        text = (text if isinstance(text, str) else self.input.text()).strip()
        if not text or self.streaming:
            return
        if self._session.model_info is None:
            self.hint.setText("Load a model on the Model screen to chat.")
            return
        self.input.clear()
        self._asked, self.replied_to = fact, None
        if self._selected is not None:  # a new question ends the selection in an earlier reply
            self._selected.clear_selection()
            self._selected = None
        compare = self.compare.isChecked() and self._session.project_info is not None
        self._turn = PANES if compare else ("edited",)
        self.answers = {"edited": "", "original": ""}
        for name in self._turn:
            self.conversations[name].append({"role": "user", "content": text})
            self.panes[name].add_user(text)
            reply = self._streaming[name] = self.panes[name].add_reply(self._speaker(name, compare), fact)
            if name == "edited":
                reply.selection_changed.connect(self._reply_selected)
                reply.body.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
                reply.body.customContextMenuRequested.connect(lambda pos, r=reply: self._show_reply_menu(r, pos))
        self._job = self._session.job(
            jobs.chat_reply, long=True, busy=False, on_yield=self._on_piece,
            messages=list(self.conversations["edited"]),
            original=list(self.conversations["original"]) if compare else None,
            max_new_tokens=self.max_tokens.value(),
        )
        self._session.start(self._reply(self._job))
        self._update()

    def stop(self) -> None:
        if self._job is not None:
            self._job.cancel()

    def ask_about(self, fact: EditRequest) -> None:
        """Ask the question that checks `fact` (from the Log or the quick-question box)."""
        self._session.start(self._ask(fact))

    async def _ask(self, fact: EditRequest) -> None:
        self.send(await self._session.job(jobs.fact_question, fact=fact), fact)

    def correct(self) -> None:
        """Ask for a fact that corrects the reply with the selection (or else the last reply): its
        subject and prompt, the selected words as the current answer, the new object left to the user."""
        fact, _why = self._correction()
        if fact is not None:
            self.correct_requested.emit(fact)

    def _selection(self) -> tuple[ReplyMessage, str] | None:
        """The edited model's complete reply words are selected in, with those words (None: none)."""
        reply = self._selected
        if reply is None or not reply.complete:
            return None
        words = reply.selected_words()
        return (reply, words) if words else None

    def _reply_selected(self, reply: ReplyMessage) -> None:
        """Words are selected in one reply at a time: a new selection ends the one in another reply."""
        if reply.selected_words():
            if self._selected is not None and self._selected is not reply:
                self._selected.clear_selection()
            self._selected = reply
        self._update_correct()

    def _correction(self) -> tuple[EditRequest | None, str]:
        """The fact "Correct this…" would start (None: none), and a tooltip that says what it does or why not."""
        selected = self._selection()
        if selected is None:
            fact, words = self.replied_to, ""
        else:
            reply, words = selected
            fact = reply.fact
        if fact is None:
            return None, _TYPED_QUESTION if self.conversations["edited"] else _NO_REPLY_YET
        opens = "Write the right answer as a new fact: opens the Edit form with this question's subject and prompt"
        if not words:
            return (EditRequest(fact.subject, fact.prompt, "", relation=fact.relation, questions=fact.questions),
                    f"{opens} (select words of the reply to give them as its current answer)")
        return (EditRequest(fact.subject, fact.prompt, "", words, relation=fact.relation, questions=fact.questions),
                f"{opens}, and “{words}” as the model's current answer")

    def _ask_index(self, index: int) -> None:
        if 0 <= index < len(self._facts):
            self.ask_about(self._facts[index])

    def clear(self) -> None:
        self.stop()
        self.conversations = {name: [] for name in PANES}
        self._turn = ()  # a reply still streaming joins no conversation
        self._selected = None
        self._streaming = {}
        self._asked = self.replied_to = None
        self.answers = {}
        for pane in self.panes.values():
            pane.clear()
        self._update()

    def refresh_facts(self) -> None:
        show_job_result(self._session, jobs.applied_facts, self._show_facts)

    def apply_changes(self, changes: BatchChanges) -> None:
        """A batch's or an undo's record says which facts are applied now: they join the quick
        questions, and those it left not applied (failed, undone) leave them."""
        facts = {f.fact_id: f for f in self._facts}
        for row in changes.rows:
            if row.status == "applied":
                facts[row.id] = row.request
            else:
                facts.pop(row.id, None)
        self._show_facts([facts[i] for i in sorted(facts)])

    def _show_facts(self, facts: list[EditRequest]) -> None:
        self._facts = facts
        self.fact_box.clear()
        for fact in self._facts:
            self.fact_box.addItem(f"#{fact.fact_id} {fact.text} → {fact.target_new}")
        self.fact_box.setCurrentIndex(-1)
        self._update()

    # ---- streaming ---------------------------------------------------------------------------

    def _on_piece(self, value: tuple[str, str]) -> None:
        pane, piece = value
        self.answers[pane] = self.answers.get(pane, "") + piece
        if pane in self._streaming:
            self._streaming[pane].append(piece)

    async def _reply(self, job: Job) -> None:
        """The reply once it is complete, stopped or failed; the transcript keeps what came."""
        try:
            reply = await job
        except Cancelled:
            self._finish(self.answers.get("edited", ""))
            self.hint.setText("Stopped.")
        except Exception as error:  # shown over the chat, like every failed operation
            self._finish(self.answers.get("edited", ""))
            show_error(error, self)
        else:
            self._finish(reply or self.answers.get("edited", ""))

    def _finish(self, reply: str) -> None:
        self._job = None
        self.replied_to = self._asked
        for name in self._turn:  # each pane's conversation keeps its own reply (what came, when stopped)
            answer = reply if name == "edited" else self.answers.get(name, "")
            self.conversations[name].append({"role": "assistant", "content": answer})
            self._streaming[name].finish(answer)
        self._turn, self._streaming = (), {}
        self._update()

    # ---- display -----------------------------------------------------------------------------

    def reply_menu(self, reply: ReplyMessage | None = None) -> QMenu:
        """A reply's standard context menu (the edited model's last reply unless named), with
        "Correct this…" when words are selected in it (disabled, saying why, when its question
        names no fact)."""
        replies = self.panes["edited"].replies()
        reply = reply or (replies[-1] if replies else None)
        if reply is None:
            return QMenu(self)
        menu = reply.body.createStandardContextMenu()
        if reply.selected_words():
            menu.addSeparator()
            menu.addAction(self.correct_action)
            menu.setToolTipsVisible(True)  # a disabled action says why
        return menu

    def _show_reply_menu(self, reply: ReplyMessage, pos: QPoint) -> None:
        self.reply_menu(reply).exec(reply.body.viewport().mapToGlobal(pos))

    def _speaker(self, pane: str, compare: bool) -> str:
        """Who writes a reply: "Model", or in compare mode the model's name and which weights."""
        info = self._session.model_info
        if not compare or info is None:
            return "Model"
        return f"Model ({info.name}, {'edited' if pane == 'edited' else 'original weights'})"

    def _update_correct(self) -> None:
        fact, why = self._correction()
        for widget in (self.correct_button, self.correct_action):
            widget.setEnabled(fact is not None and not self.streaming)
            widget.setToolTip("Available once the reply is complete" if self.streaming else why)

    def _show_compare(self, on: bool) -> None:
        self.boxes["original"].setVisible(on)
        self._update()

    def _update(self) -> None:
        has_model = self._session.model_info is not None
        self.send_button.setEnabled(has_model and not self.streaming)
        self.stop_button.setEnabled(self.streaming)
        self._update_correct()
        self.ask_button.setEnabled(bool(self._facts) and not self.streaming)
        if not has_model:
            self.hint.setText("Load a model on the Model screen to chat.")
        elif self.compare.isChecked() and self._session.project_info is None:
            self.hint.setText("Compare mode needs an open project (the original is the project's base model).")
        elif self.streaming:
            self.hint.setText("Answering…")
        else:
            self.hint.setText("")
