"""On the tiny real model: a run shows, per fact, whether the model now writes the new object and
what it wrote; Retry (after the run, and on the Log screen) queues the facts that did not hold;
the Advanced panel shows the λ/β schedule; the chat's "Correct this…" starts a fact in the Edit form,
with the words selected in the reply as the model's current answer."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QTextCursor

from nse_engine.facts import EditRequest

from app.conftest import FACT, JOB_TIMEOUT_MS, error_dialogs, load, queue_fact, set_setting, wait_idle

from nse_app.views.chat_blocks import ReplyMessage


def _select(reply: ReplyMessage, start: int, end: int) -> None:
    cursor = QTextCursor(reply.body.document())
    cursor.setPosition(start)
    cursor.setPosition(end, QTextCursor.MoveMode.KeepAnchor)
    reply.body.setTextCursor(cursor)


def _select_first_word(reply: ReplyMessage) -> str:
    """Select, as a user would, the first word of the reply and the space after it; return the word."""
    text = reply.body.toPlainText()
    word = text.split()[0]
    start = text.index(word)
    end = start + len(word) + 1 if text[start + len(word):start + len(word) + 1].isspace() else start + len(word)
    _select(reply, start, end)
    return word


def test_a_run_shows_what_did_not_hold_and_retry_queues_it_again(qtbot, project_window):
    window = project_window
    queue, log = window.queue_view, window.log_view
    queue_fact(qtbot, window)
    window.tabs.setCurrentWidget(queue)
    queue.advanced.setChecked(True)
    qtbot.waitUntil(lambda: queue.schedule_label.text().startswith("λ/β schedule: off"), timeout=JOB_TIMEOUT_MS)
    set_setting(queue, "schedule_ramp_edits", "100")
    set_setting(queue, "schedule_start", "0.2")
    qtbot.waitUntil(lambda: "<table" in queue.schedule_label.text(), timeout=JOB_TIMEOUT_MS)
    label = queue.schedule_label.text()
    assert [f"<tr><td>{n}</td><td>×{m}</td>" in label for n, m in ((0, "0.20"), (25, "0.40"), (100, "1.00"))] == [True] * 3
    set_setting(queue, "schedule_start", "0")  # the spin box takes 0; the schedule needs more
    qtbot.waitUntil(lambda: "schedule_start" in queue.schedule_label.text(), timeout=JOB_TIMEOUT_MS)
    set_setting(queue, "schedule_start", "0.2")
    # the tiny random model never writes "English"; one extra pass, and no refusal for distance
    set_setting(queue, "verify_passes", "1")
    set_setting(queue, "upper_bound", "1000000")

    with qtbot.waitSignal(window.session.changed, timeout=JOB_TIMEOUT_MS):
        queue.run_button.click()
    wait_idle(qtbot, window.session)
    assert not error_dialogs(), [d.text() for d in error_dialogs()]
    result = queue.result
    qtbot.waitUntil(lambda: not result.isHidden())
    assert result.summary.text() == "Batch 1: held 0/1 (0 after extra passes)."
    assert "The mother tongue of Danielle Darrieux is" in result.facts.toPlainText()
    assert "not held (wanted English)" in result.facts.toPlainText()
    (row,) = result.rows
    assert row.held is False and row.extra_passes == 1 and row.continuation
    qtbot.waitUntil(lambda: log.facts_table.rowCount() == 1)
    held = next(c for c in range(log.facts_table.columnCount()) if log.facts_table.horizontalHeaderItem(c).text() == "Held")
    assert log.facts_table.item(0, held).text() == "not held"

    assert not result.retry_button.isHidden()
    result.retry_button.click()
    qtbot.waitUntil(lambda: queue.table.rowCount() == 1, timeout=JOB_TIMEOUT_MS)
    wait_idle(qtbot, window.session)
    assert result.retry_button.isHidden()
    assert queue.table.item(0, 1).text() == FACT["subject"] and queue.table.item(0, 3).text() == "English"
    qtbot.waitUntil(lambda: [f.status for f in log._facts] == ["applied", "queued"])

    queue.table.selectRow(0)  # take the copy out again, and retry from the Log screen instead
    queue.remove_button.click()
    qtbot.waitUntil(lambda: queue.table.rowCount() == 0, timeout=JOB_TIMEOUT_MS)
    wait_idle(qtbot, window.session)
    window.tabs.setCurrentWidget(log)
    log.batches_table.selectRow(0)
    assert log.retry_button.isEnabled()
    log.retry_button.click()
    qtbot.waitUntil(lambda: queue.table.rowCount() == 1, timeout=JOB_TIMEOUT_MS)
    wait_idle(qtbot, window.session)
    assert not error_dialogs(), [d.text() for d in error_dialogs()]


def _chat_on_tiny_model(qtbot, window, tiny_model_dir):
    """The Chat screen on the loaded tiny model with short replies, and the Edit form."""
    load(qtbot, window, str(tiny_model_dir))
    window.tabs.setCurrentWidget(window.chat_view)
    window.chat_view.max_tokens.setValue(4)
    return window.chat_view, window.edit_form


def test_correct_this_opens_the_edit_form_with_the_question_asked(qtbot, window, tiny_model_dir):
    chat, form = _chat_on_tiny_model(qtbot, window, tiny_model_dir)
    chat.input.setText("The capital of France is")
    chat.send_button.click()
    qtbot.waitUntil(lambda: not chat.streaming, timeout=JOB_TIMEOUT_MS)
    wait_idle(qtbot, window.session)
    assert not chat.correct_button.isEnabled()  # a free question names no fact to correct
    (reply,) = chat.panes["edited"].replies()
    _select_first_word(reply)  # not even with words of its reply selected
    assert not chat.correct_button.isEnabled() and "typed question" in chat.correct_button.toolTip()
    assert chat.correct_action in chat.reply_menu().actions() and not chat.correct_action.isEnabled()

    chat.ask_about(EditRequest("Danielle Darrieux", "The mother tongue of {} is", "English", "French",
                               relation="mother tongue", fact_id=1))
    qtbot.waitUntil(lambda: chat.replied_to is not None, timeout=JOB_TIMEOUT_MS)
    wait_idle(qtbot, window.session)
    assert chat.correct_button.isEnabled()
    qtbot.mouseClick(chat.correct_button, Qt.MouseButton.LeftButton)
    assert window.tabs.currentWidget() is form
    assert (form.subject.text(), form.prompt.text(), form.relation.text()) == (
        "Danielle Darrieux", "The mother tongue of {} is", "mother tongue")
    assert form.target_new.text() == "" and form.target_true.text() == ""
    assert "New object" in form.problems_label.text()  # the object is the user's to write

    window.tabs.setCurrentWidget(chat)  # now with a word of the reply selected, from its context menu
    reply = chat.panes["edited"].replies()[-1]
    reply.body.moveCursor(QTextCursor.MoveOperation.End)
    assert chat.correct_action not in chat.reply_menu().actions()  # no selection, no menu entry
    word = _select_first_word(reply)
    assert chat.correct_button.isEnabled() and f"“{word}”" in chat.correct_button.toolTip()
    (action,) = [a for a in chat.reply_menu().actions() if a.text() == "Correct this…"]
    assert action.isEnabled()
    action.trigger()
    assert window.tabs.currentWidget() is form
    assert (form.subject.text(), form.prompt.text(), form.relation.text()) == (
        "Danielle Darrieux", "The mother tongue of {} is", "mother tongue")
    assert form.target_true.text() == word and form.target_new.text() == ""
    qtbot.waitUntil(form.target_new.hasFocus)
    assert not error_dialogs(), [d.text() for d in error_dialogs()]
    _settle(qtbot, window)


def test_correct_this_takes_the_reply_the_selection_overlaps_and_only_its_words(qtbot, window, tiny_model_dir):
    chat, form = _chat_on_tiny_model(qtbot, window, tiny_model_dir)
    facts = (EditRequest("Danielle Darrieux", "The mother tongue of {} is", "English", "French", fact_id=1),
             EditRequest("Toko Yasuda", "{} plays the", "piano", "guitar", fact_id=2))
    for fact in facts:
        chat.ask_about(fact)
        qtbot.waitUntil(lambda fact=fact: chat.replied_to is fact, timeout=JOB_TIMEOUT_MS)
        wait_idle(qtbot, window.session)
    first, second = chat.panes["edited"].replies()
    answers = [" ".join(r.body.toPlainText().split()) for r in (first, second)]
    _select(first, 0, len(first.body.toPlainText()))  # the whole first reply
    assert chat.correct_button.isEnabled()
    chat.correct_button.click()
    assert (form.subject.text(), form.target_true.text()) == ("Danielle Darrieux", answers[0])
    word = _select_first_word(second)  # a selection in the second reply ends the one in the first
    assert not first.selected_words()
    chat.correct_button.click()
    assert (form.subject.text(), form.target_true.text()) == ("Toko Yasuda", word)
    _settle(qtbot, window)


def _settle(qtbot, window) -> None:
    """Let the Edit form's preview, started by the filled form, run before the window closes."""
    qtbot.waitUntil(lambda: not window.edit_form._preview_timer.isActive(), timeout=JOB_TIMEOUT_MS)
    wait_idle(qtbot, window.session)
