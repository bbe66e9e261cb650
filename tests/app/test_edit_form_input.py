"""Bad input in the Edit form (issue 36 item 6): limits shared with import, a counter near them,
messages in the form's words once a field was touched, a disabled Add button that says why, and
text of any length that never widens the window nor starts a long preview."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QLabel

from nse_engine.fact_files.validation import MAX_CHARACTERS
from nse_engine.facts import EditRequest
from nse_engine.project_summary import ProjectSummary

from nse_app.session import Session
from nse_app.views.edit_form import EditForm

from app.conftest import load, wait_idle

PROJECT = ProjectSummary("/data/capitals", "capitals", "default", "nse")
NARROWEST = 1024  # px: the narrowest screen the window must fit


@pytest.fixture
def form(qtbot, loop):
    session = Session()
    session.project_info = PROJECT
    view = EditForm(session)
    qtbot.addWidget(view)
    view.show()
    qtbot.waitExposed(view)
    yield view
    session.shutdown()


def test_messages_use_the_forms_labels_and_wait_until_a_field_is_touched(qtbot, form):
    assert "empty" not in form.problems_label.text()  # nothing touched, nothing blamed
    qtbot.keyClicks(form.subject, "Danielle Darrieux")
    text = form.problems_label.text()
    assert "is empty" not in text and "Relation prompt" in text and "New object" in text  # what is still to write
    assert not form.prompt.property("invalid") and not form.target_new.property("invalid")

    qtbot.keyClicks(form.target_new, "x")
    qtbot.keyClick(form.target_new, Qt.Key.Key_Backspace)
    text = form.problems_label.text()
    assert "• New object is empty" in text and "target_new" not in text
    assert form.target_new.property("invalid") and not form.prompt.property("invalid")


def test_ctrl_enter_on_an_empty_form_says_what_is_missing(qtbot, form):
    form.activateWindow()
    qtbot.keyClick(form.subject, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    text = form.problems_label.text()
    for label in ("Subject", "Relation prompt", "New object"):
        assert f"• {label} is empty" in text
    assert "target_new" not in text and "subject:" not in text


def test_a_disabled_add_button_says_why(qtbot, form):
    assert not form.add_button.isEnabled()
    assert "Subject is empty" in form.add_button.toolTip() and "New object is empty" in form.add_button.toolTip()
    qtbot.keyClicks(form.subject, "Danielle Darrieux")
    qtbot.keyClicks(form.prompt, "The mother tongue of {} is")
    qtbot.keyClicks(form.target_new, "English")
    assert form.add_button.isEnabled() and "Ctrl+Enter" in form.add_button.toolTip()
    form._session.project_info = None
    form.validate()
    assert not form.add_button.isEnabled() and "project" in form.add_button.toolTip()


def test_a_pasted_page_is_over_the_limit_with_a_counter_not_ready(qtbot, form):
    limit = MAX_CHARACTERS["subject"]
    qtbot.keyClicks(form.prompt, "The capital of {} is")
    qtbot.keyClicks(form.target_new, "Rome")
    form.subject.setText("S" * (limit - 10))  # near the limit: the counter shows
    counter = form.counters["subject"]
    assert counter.isVisible() and counter.text() == f"{limit - 10}/{limit}" and not counter.property("over")
    assert form.add_button.isEnabled()

    form.subject.setText("S" * 5000)
    assert counter.text() == f"5,000/{limit}" and counter.property("over")
    assert "Ready" not in form.problems_label.text()
    assert f"Subject has 5,000 characters; at most {limit} are allowed" in form.problems_label.text()
    assert not form.add_button.isEnabled() and "Subject has 5,000 characters" in form.add_button.toolTip()
    assert not form.counters["prompt"].isVisible()


@pytest.mark.parametrize("subject", ["S" * 5000, "S" * 200])
def test_long_input_does_not_widen_the_window(qtbot, window, subject):
    form = window.edit_form
    window.tabs.setCurrentWidget(form)
    qtbot.keyClicks(form.prompt, "The capital is")  # no {} and no subject: the message quotes the subject
    form.subject.setText(subject)
    qtbot.keyClicks(form.target_new, "Rome")
    assert form.problems_label.text() and "Ready" not in form.problems_label.text()
    QApplication.processEvents()
    assert window.minimumSizeHint().width() <= NARROWEST


def test_an_over_long_subject_starts_no_preview_and_a_long_one_does_not_widen_the_window(qtbot, window, tiny_model_dir):
    load(qtbot, window, str(tiny_model_dir))
    form = window.edit_form
    window.tabs.setCurrentWidget(form)
    form.prompt.setText("{} is")
    form.subject.setText("S" * 5000)
    form.refresh_preview()
    assert form._preview_job is None and "Shorten" in form.preview_label.text()

    form.subject.setText("S" * 200)
    form.refresh_preview()
    assert form._preview_job is not None
    wait_idle(qtbot, window.session)
    QApplication.processEvents()
    assert window.minimumSizeHint().width() <= NARROWEST



def test_chat_questions_have_their_own_field_limit_and_are_filled_when_editing(qtbot, form):
    """Questions (chat), like paraphrases: one per line, each within the shared limit, named in the
    form's words; editing a queued fact fills them, and the fact the form builds carries them."""
    limit = MAX_CHARACTERS["questions"]
    assert "Questions (chat)" in [label.text() for label in form.findChildren(QLabel)]
    qtbot.keyClicks(form.subject, "Heihe")
    qtbot.keyClicks(form.prompt, "{} is a city in the country of")
    qtbot.keyClicks(form.target_new, "Rwanda")
    form.questions.setPlainText("Which country is Heihe in?\n" + "Q" * 600)
    counter = form.counters["questions"]
    assert counter.isVisible() and counter.text() == f"600/{limit}" and counter.property("over")
    assert f"• Questions (chat) has 600 characters; at most {limit} are allowed each" in form.problems_label.text()
    assert form.questions.property("invalid") and not form.add_button.isEnabled()

    form.questions.setPlainText("Which country is Heihe in?\n\nIn which country is Heihe?")
    assert form.add_button.isEnabled() and not counter.isVisible()
    assert form.request.questions == ("Which country is Heihe in?", "In which country is Heihe?")

    form.clear()
    form.edit_existing(EditRequest("Heihe", "{} is in", "Rwanda", fact_id=4, questions=("Is Heihe in Rwanda?",)))
    assert form.questions.toPlainText() == "Is Heihe in Rwanda?" and form.request.questions == ("Is Heihe in Rwanda?",)
    form.correct(EditRequest("Lyon", "{} is in", "", "France", questions=("Where is Lyon?",)))  # from a chat reply
    assert form.questions.toPlainText() == "Where is Lyon?" and form.add_button.text() == "Add to queue"
