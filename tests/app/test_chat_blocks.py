"""Chat that reads like chat: the question and each reply are blocks of their own, a finished reply
is shown as Markdown (without running HTML or loading anything), and each reply's Copy button puts
its text on the clipboard."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QGuiApplication, QTextCursor
from PySide6.QtWidgets import QPushButton

from app.conftest import JOB_TIMEOUT_MS, error_dialogs, load, wait_idle

from nse_app.views.chat_blocks import ChatPane, ReplyMessage, UserMessage

REPLY = "Paris is **the capital**.\n\n- one\n- two\n\n<b>not html</b> ![logo](http://example.com/logo.png)"


def _weight_at(message: ReplyMessage, word: str) -> int:
    text = message.body.toPlainText()
    cursor = QTextCursor(message.body.document())
    cursor.setPosition(text.index(word) + 1)
    return cursor.charFormat().fontWeight()


def test_a_finished_reply_is_markdown_that_runs_and_loads_nothing(qtbot):
    pane = ChatPane()
    qtbot.addWidget(pane)
    pane.add_user("What is the capital of France?")
    reply = pane.add_reply("Model")
    for piece in (REPLY[:12], REPLY[12:]):
        reply.append(piece)
    assert "**the capital**" in reply.body.toPlainText()  # streamed as it comes, plain
    reply.finish(REPLY)
    shown = reply.body.toPlainText()
    assert "**" not in shown and "the capital" in shown
    assert _weight_at(reply, "the capital") == QFont.Weight.Bold
    assert _weight_at(reply, "Paris") == QFont.Weight.Normal
    assert "<b>not html</b>" in shown  # HTML in a reply is text, not markup
    assert reply.body.loadResource(0, "http://example.com/logo.png") is None
    assert not reply.body.openLinks() and not reply.body.openExternalLinks()


def test_each_reply_is_a_block_whose_copy_button_copies_it(qtbot, window, tiny_model_dir):
    load(qtbot, window, str(tiny_model_dir))
    chat = window.chat_view
    window.tabs.setCurrentWidget(chat)
    chat.max_tokens.setValue(6)
    for question in ("The capital of France is", "Are you sure?"):
        chat.input.setText(question)
        chat.send_button.click()
        qtbot.waitUntil(lambda: not chat.streaming, timeout=JOB_TIMEOUT_MS)
        wait_idle(qtbot, window.session)
    pane = chat.panes["edited"]
    kinds = [(type(m), m.objectName()) for m in pane.messages]
    assert kinds == [(UserMessage, "userMessage"), (ReplyMessage, "modelMessage")] * 2
    first, second = pane.replies()
    assert first.speaker == "Model" and first.text == chat.conversations["edited"][1]["content"]
    assert second.text == chat.answers["edited"]
    (copy,) = [b for b in first.findChildren(QPushButton) if b.text() == "Copy"]
    QGuiApplication.clipboard().clear()
    qtbot.mouseClick(copy, Qt.MouseButton.LeftButton)
    assert QGuiApplication.clipboard().text() == first.text
    chat.clear()  # New conversation
    qtbot.waitUntil(lambda: not pane.findChildren(ReplyMessage))
    assert pane.messages == [] and pane.toPlainText() == ""
    assert not error_dialogs(), [d.text() for d in error_dialogs()]
