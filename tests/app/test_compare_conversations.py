"""Compare mode is a clean baseline: on a tiny chat model with one strong edit, two turns in
compare mode feed the original model its own first reply, never the edited model's."""

from __future__ import annotations

import nse_engine.chat

from app.conftest import JOB_TIMEOUT_MS, error_dialogs, load, open_project, queue_fact, wait_idle
from app.test_edit_flow import type_strong_settings


def _ask(qtbot, window, text: str) -> tuple[str, str]:
    chat = window.chat_view
    chat.input.setText(text)
    chat.send_button.click()
    qtbot.waitUntil(lambda: not chat.streaming, timeout=JOB_TIMEOUT_MS)
    wait_idle(qtbot, window.session)
    return chat.answers["edited"], chat.answers["original"]


def test_the_original_pane_keeps_its_own_conversation(qtbot, window, tiny_chat_model, tmp_path, monkeypatch):
    load(qtbot, window, str(tiny_chat_model))
    open_project(qtbot, window, tmp_path / "project")
    queue_fact(qtbot, window)
    type_strong_settings(window.queue_view)
    with qtbot.waitSignal(window.session.changed, timeout=JOB_TIMEOUT_MS) as changed:
        window.queue_view.run_queue()
    wait_idle(qtbot, window.session)
    assert changed.args[0].applied_fact_ids, changed.args[0].failed

    prompts: list[list[dict[str, str]]] = []  # each conversation the model was asked to continue, in order
    real_stream = nse_engine.chat.stream_reply

    def recording_stream(loaded, conversation, **kwargs):
        prompts.append([dict(m) for m in conversation])
        return real_stream(loaded, conversation, **kwargs)

    monkeypatch.setattr(nse_engine.chat, "stream_reply", recording_stream)
    chat = window.chat_view
    window.tabs.setCurrentWidget(chat)
    chat.max_tokens.setValue(6)
    chat.compare.setChecked(True)
    first, second = "The mother tongue of Danielle Darrieux is", "Are you sure?"
    edited_1, original_1 = _ask(qtbot, window, first)
    assert edited_1 != original_1  # the edit changed the reply: the two conversations differ from here on
    _ask(qtbot, window, second)

    assert len(prompts) == 4  # edited then original, per turn
    edited_prompt, original_prompt = prompts[2], prompts[3]
    assert edited_prompt == [{"role": "user", "content": first}, {"role": "assistant", "content": edited_1},
                             {"role": "user", "content": second}]
    assert original_prompt == [{"role": "user", "content": first}, {"role": "assistant", "content": original_1},
                               {"role": "user", "content": second}]
    original_text = chat.panes["original"].toPlainText()
    assert "Model (tiny-chat, original weights):" in original_text
    assert "Model (tiny-chat, edited):" in chat.panes["edited"].toPlainText()
    # each reply block names the model that wrote it
    assert [r.speaker for r in chat.panes["original"].replies()] == ["Model (tiny-chat, original weights)"] * 2
    assert [r.speaker for r in chat.panes["edited"].replies()] == ["Model (tiny-chat, edited)"] * 2
    assert not error_dialogs(), [d.text() for d in error_dialogs()]
