"""What happens while the model's one-time preparation runs: Esc stops a chat reply or a waiting
export and leaves the preparation running; Export asks its questions at once, then says its job
waits for the preparation; a queue run's time left counts from its first batch's start, not the wait."""

from __future__ import annotations

import time

import pytest

from nse_engine.facts import EditRequest

from nse_app import main_window
from nse_app.session import WAITING_FOR_PREPARATION

from app.conftest import FACT, JOB_TIMEOUT_MS, error_dialogs, load, wait_idle
from app.test_export import Questions
from app.test_model_preparation import OPENS_WITHIN_MS, STEP_MS, stopping_jobs  # noqa: F401 (a fixture)


@pytest.fixture
def preparing(qtbot, window, stopping_jobs, tiny_model_dir, tmp_path, monkeypatch):
    """The window with a new project open and the model's preparation running (nothing cached)."""
    monkeypatch.setenv("NSE_CACHE_DIR", str(tmp_path / "empty-cache"))
    load(qtbot, window, str(tiny_model_dir))
    with qtbot.waitSignal(window.session.project_changed, timeout=OPENS_WITHIN_MS):
        window.model_view.open_project(str(tmp_path / "project"))
    assert window.session.preparing
    return window


def test_esc_stops_the_chat_reply_and_leaves_the_preparation_running(qtbot, preparing):
    window, session, chat = preparing, preparing.session, preparing.chat_view
    window.tabs.setCurrentWidget(chat)
    chat.input.setText("The capital of France is")
    chat.send_button.click()
    assert chat.streaming
    window.cancel_action.trigger()  # the reply waits for the preparation's next pause point, or runs
    qtbot.waitUntil(lambda: not chat.streaming, timeout=STEP_MS)
    qtbot.wait(100)
    assert session.preparation == "running", "Esc on the chat reply cancelled the model's preparation"

    window.cancel_action.trigger()  # with nothing else running, Esc (and the status bar's Cancel) stops it
    qtbot.waitUntil(lambda: session.preparation == "cancelled", timeout=STEP_MS)
    assert session.project_info is not None and not error_dialogs()


def test_export_asks_at_once_and_waits_for_the_preparation_saying_so(qtbot, preparing, monkeypatch, tmp_path):
    window, session = preparing, preparing.session
    asked_while_preparing: list[bool] = []

    class Asked(Questions):
        def __call__(self, *args, **kwargs):
            asked_while_preparing.append(session.preparing)
            return super().__call__(*args, **kwargs)

    out = tmp_path / "exported"
    monkeypatch.setattr(main_window, "choose_export_folder", lambda parent=None: str(out))
    monkeypatch.setattr(main_window.QMessageBox, "question", Asked({"base model": True}))
    window.export_action.trigger()
    qtbot.waitUntil(lambda: bool(asked_while_preparing), timeout=STEP_MS)
    assert asked_while_preparing == [True], "Export showed nothing until the preparation was done"
    qtbot.waitUntil(lambda: session.job_waits, timeout=STEP_MS)
    qtbot.waitUntil(lambda: window.progress.label.text().startswith(WAITING_FOR_PREPARATION), timeout=STEP_MS)
    assert window.model_view.preparation_card.status.text().startswith(WAITING_FOR_PREPARATION)

    window.cancel_action.trigger()  # Esc cancels the waiting export, not the preparation
    qtbot.wait(100)
    assert session.preparation == "running"
    wait_idle(qtbot, session)
    assert session.preparation is None and session.project_info.prepared and not out.exists()
    assert not error_dialogs()


def test_the_queue_runs_time_left_counts_from_its_first_batch_not_the_wait(qtbot, preparing):
    window, session = preparing, preparing.session
    facts = [EditRequest(FACT["subject"], FACT["prompt"], FACT["target_new"], FACT["target_true"]),
             EditRequest("Apple A5", "{} is developed by", "Google", "Apple")]
    session.start(session.queue_facts(facts))
    qtbot.waitUntil(lambda: len(window.queue_view._facts) == 2, timeout=STEP_MS)
    ended: list[float] = []
    session.preparation_changed.connect(lambda: ended.append(time.monotonic()) if not session.preparing else None)
    window.queue_view.batch_size.setValue(1)
    window.queue_view.run_queue()
    qtbot.waitUntil(lambda: session.queue_run is not None and session.job_waits, timeout=STEP_MS)
    run = session.queue_run
    with qtbot.waitSignal(session.changed, timeout=JOB_TIMEOUT_MS):
        pass
    counted_from_start = bool(ended) and run.started >= ended[0] - 0.5
    wait_idle(qtbot, session)
    assert counted_from_start, "the run's clock started before its first batch waited"
    assert not error_dialogs()
