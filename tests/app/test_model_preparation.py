"""First run is a card, not a lock: on a model with nothing cached, opening a project returns at
once; the model's one-time preparation (settings derived, key statistics computed) runs in the
background with a card on the Model screen, while facts are queued and the chat replies between
its steps; Cancel stops only the preparation, and a batch afterwards prepares the model first,
saying that it waits, then edits."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from nse_app.session import WAITING_FOR_PREPARATION

from app.conftest import FACT, JOB_TIMEOUT_MS, error_dialogs, load, wait_idle
from app.test_window_fits import LOWEST, NARROWEST

OPENS_WITHIN_MS = 10_000  # deriving the tiny model's settings and statistics takes 15–35 s here
STEP_MS = 30_000  # a queue edit or a short chat reply, run between two steps of the statistics


@pytest.fixture
def stopping_jobs(qtbot, window):
    """Whatever fails, leave no job running: closing a busy window would ask before quitting."""
    yield
    window.session.worker.cancel_all()
    wait_idle(qtbot, window.session)


def test_preparation_runs_in_the_background_and_cancel_keeps_the_project(qtbot, window, stopping_jobs, tiny_model_dir,
                                                                        tmp_path, monkeypatch):
    cache = tmp_path / "empty-cache"
    monkeypatch.setenv("NSE_CACHE_DIR", str(cache))  # nothing derived or measured yet
    session, card = window.session, window.model_view.preparation_card
    load(qtbot, window, str(tiny_model_dir))
    assert not card.isVisible()

    with qtbot.waitSignal(session.project_changed, timeout=OPENS_WITHIN_MS):
        window.model_view.open_project(str(tmp_path / "project"))
    assert not list(cache.glob("*/*")), "the project opened only once the settings and statistics were cached"
    assert session.project_info is not None and not session.project_info.prepared
    assert session.preparing and not session.busy
    assert window.model_view.new_project_button.isEnabled() and window.model_view.open_project_button.isEnabled()
    assert window.run_action.isEnabled()

    # the card: what it is, one-time and cached, progress with the time left; the status bar says it too
    qtbot.waitUntil(lambda: card.isVisible() and "computing statistics" in card.status.text()
                    and card.bar.value() > 0 and "left" in card.status.text(), timeout=JOB_TIMEOUT_MS)
    assert "for editing" in card.title.text() and "One-time" in card.about.text() and "cached" in card.about.text()
    assert card.cancel_button.isVisible() and card.cancel_button.isEnabled() and not card.prepare_button.isVisible()
    assert window.progress.label.text().startswith("One-time model preparation · computing statistics")
    assert window.progress.cancel_button.isEnabled()

    # queueing a fact works meanwhile: the Edit form's Add, and the Queue shows it
    form = window.edit_form
    window.tabs.setCurrentWidget(form)
    for field, key in ((form.subject, "subject"), (form.prompt, "prompt"), (form.target_new, "target_new"),
                       (form.target_true, "target_true")):
        qtbot.keyClicks(field, FACT[key])
    assert form.add_button.isEnabled(), form.problems_label.text()
    with qtbot.waitSignal(form.queued, timeout=STEP_MS):
        qtbot.mouseClick(form.add_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(window.queue_view._facts) == 1, timeout=STEP_MS)
    assert session.preparing

    # and the chat replies between the statistics' steps
    chat = window.chat_view
    window.tabs.setCurrentWidget(chat)
    chat.max_tokens.setValue(4)
    chat.input.setText("The capital of France is")
    chat.send_button.click()
    qtbot.waitUntil(lambda: not chat.streaming, timeout=STEP_MS)
    assert chat.answers["edited"] and chat.answers["edited"] in chat.panes["edited"].toPlainText()
    assert session.preparing, "the reply came only after the preparation"

    # Cancel stops the preparation only: the project stays open, the card says it is not done
    window.tabs.setCurrentWidget(window.model_view)
    qtbot.mouseClick(card.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: session.preparation == "cancelled", timeout=STEP_MS)
    assert session.project_info is not None and session.project_info.name == "project"
    assert card.isVisible() and card.prepare_button.isVisible() and not card.cancel_button.isVisible()
    assert "not done" in card.note.text() and "stays open" in card.note.text()
    assert not error_dialogs()
    hint = window.minimumSizeHint()
    assert hint.width() <= NARROWEST and hint.height() <= LOWEST, f"with the card the Model screen needs {hint}"

    # a batch afterwards waits for the preparation (and says so), then edits
    window.tabs.setCurrentWidget(window.queue_view)
    window.queue_view.run_queue()
    qtbot.waitUntil(lambda: session.job_waits, timeout=STEP_MS)
    qtbot.waitUntil(lambda: window.progress.label.text().startswith(WAITING_FOR_PREPARATION), timeout=JOB_TIMEOUT_MS)
    with qtbot.waitSignal(session.changed, timeout=JOB_TIMEOUT_MS) as batch:
        pass
    assert batch.args[0].applied_fact_ids or batch.args[0].failed
    wait_idle(qtbot, session)
    assert session.preparation is None and session.project_info.prepared and not card.isVisible()
    assert session.project_info.settings.layers, "the derived settings reach the views"
    assert not error_dialogs()
