"""The messages of a chat pane as blocks: the user's question, and each reply under the name of
the model that wrote it, with a Copy button; a finished reply is shown as Markdown.

A reply is text a model wrote, so it is shown, never run or fetched: Markdown without HTML, no
image or other resource is loaded (not even a local file), and a link opens nothing."""

from __future__ import annotations

import math

from PySide6.QtCore import QSizeF, Qt, QUrl, Signal
from PySide6.QtGui import QGuiApplication, QTextCursor, QTextDocument
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSizePolicy,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from nse_engine.facts import EditRequest

from nse_app.views.wiring import push_button

MARKDOWN = QTextDocument.MarkdownFeature.MarkdownDialectGitHub | QTextDocument.MarkdownFeature.MarkdownNoHTML


class ReplyText(QTextBrowser):
    """A reply's text: as tall as its contents (the pane scrolls, not the reply), selectable, and
    inert: it loads nothing and follows no link."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("replyText")
        self.setOpenLinks(False)
        self.setOpenExternalLinks(False)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.document().documentLayout().documentSizeChanged.connect(self._fit)
        self._fit(self.document().size())

    def loadResource(self, _kind: int, _name: QUrl) -> object:  # noqa: N802 (Qt override)
        return None  # images and style sheets named in a reply are not loaded

    def _fit(self, size: QSizeF) -> None:
        margins = self.contentsMargins()
        self.setFixedHeight(math.ceil(size.height()) + margins.top() + margins.bottom())


class UserMessage(QFrame):
    """What the user asked, as plain text."""

    def __init__(self, text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("userMessage")
        self.text = text
        speaker = QLabel("You")
        speaker.setObjectName("speaker")
        body = QLabel(text)
        body.setTextFormat(Qt.TextFormat.PlainText)
        body.setWordWrap(True)
        body.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.addWidget(speaker)
        layout.addWidget(body)

    def plain_text(self) -> str:
        return f"You: {self.text}"


class ReplyMessage(QFrame):
    """One reply: who wrote it, Copy, and the text (streamed as plain text, then shown as Markdown)."""

    selection_changed = Signal(object)  # this reply, when the selection in its text changes

    def __init__(self, speaker: str, fact: EditRequest | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("modelMessage")
        self.speaker = speaker
        self.fact = fact  # the fact the question checks (None: a typed question)
        self.text = ""
        self.complete = False
        name = QLabel(speaker)
        name.setObjectName("speaker")
        self.copy_button = push_button("Copy", self.copy, tooltip="Copy this reply's text", name="copyReply")
        self.body = ReplyText()
        self.body.selectionChanged.connect(lambda: self.selection_changed.emit(self))
        top = QHBoxLayout()
        top.addWidget(name, 1)
        top.addWidget(self.copy_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.body)

    def append(self, piece: str) -> None:
        """Add a streamed piece at the end, as plain text."""
        self.text += piece
        cursor = QTextCursor(self.body.document())
        cursor.movePosition(QTextCursor.MoveOperation.End)
        cursor.insertText(piece)

    def finish(self, text: str) -> None:
        """The whole reply, shown as Markdown."""
        self.text, self.complete = text, True
        self.body.document().setMarkdown(text, MARKDOWN)

    def selected_words(self) -> str:
        """The words selected in this reply, single-spaced ("" when none)."""
        return " ".join(self.body.textCursor().selectedText().split())

    def clear_selection(self) -> None:
        cursor = self.body.textCursor()
        if cursor.hasSelection():
            cursor.clearSelection()
            self.body.setTextCursor(cursor)

    def copy(self) -> None:
        """Put the reply's text, as the model wrote it, on the clipboard."""
        QGuiApplication.clipboard().setText(self.text)

    def plain_text(self) -> str:
        return f"{self.speaker}: {self.text}"


class ChatPane(QScrollArea):
    """One conversation's messages, newest at the bottom; it follows a reply as it streams."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        content = QWidget()
        content.setObjectName("chatContent")
        self._layout = QVBoxLayout(content)
        self._layout.addStretch(1)
        self.setWidget(content)
        self.messages: list[UserMessage | ReplyMessage] = []
        bar = self.verticalScrollBar()
        bar.rangeChanged.connect(lambda _low, high: bar.setValue(high))

    def add_user(self, text: str) -> UserMessage:
        return self._add(UserMessage(text), user=True)

    def add_reply(self, speaker: str, fact: EditRequest | None = None) -> ReplyMessage:
        return self._add(ReplyMessage(speaker, fact), user=False)

    def _add(self, message, user: bool):
        row = QHBoxLayout()  # the user's messages sit right, the model's left: who speaks shows at a glance
        if user:
            row.addStretch(1)
        row.addWidget(message, 4)
        if not user:
            row.addStretch(1)
        self._layout.insertLayout(self._layout.count() - 1, row)
        self.messages.append(message)
        return message

    def replies(self) -> list[ReplyMessage]:
        return [m for m in self.messages if isinstance(m, ReplyMessage)]

    def clear(self) -> None:
        while self._layout.count() > 1:
            row = self._layout.takeAt(0).layout()
            while row.count():
                widget = row.takeAt(0).widget()
                if widget is not None:
                    widget.deleteLater()
            row.deleteLater()
        self.messages = []

    def toPlainText(self) -> str:  # noqa: N802 (named like QTextEdit's: the transcript as text)
        return "\n".join(m.plain_text() for m in self.messages)
