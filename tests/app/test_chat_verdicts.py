"""For a chat model the verdict says what the model writes in both places a user reads it: the
Queue screen's result headline counts held, completion and chat, and a fact whose completion and
chat reply disagree is shown in amber with both texts, on the result panel and in the Log."""

from __future__ import annotations

import dataclasses

import pytest

from nse_engine.facts import EditRequest
from nse_engine.store.log_rows import LogRow

from nse_app.session import Session
from nse_app.views.log_view import LogView
from nse_app.views.queue_view import QueueView
from nse_app.views.written import DISAGREE_COLOR, NOT_HELD_COLOR

CITY = EditRequest("Kigali", "{} is a city in the country of", "Rwanda", "Uganda", fact_id=1)


def row(fact_id: int, completion: str, completion_held: bool, chat: str | None, chat_held: bool | None) -> LogRow:
    """An applied fact as the log returns it after a round that asked it in chat (or not: chat None)."""
    return LogRow(dataclasses.replace(CITY, fact_id=fact_id), "applied", 4, None, None, None, 0.1, 0.5, 0.8, 0.05,
                  0.8, 0.05, True, continuation=completion, held=completion_held and chat_held is not False,
                  chat_reply=chat, completion_held=completion_held, chat_held=chat_held)


CHAT_ROWS = [
    row(1, " Rwanda, in the east", True, "Kigali is in Rwanda.", True),
    row(2, " Rwanda, a country", True, "Kigali is a city in Tanzania.", False),
    row(3, " Uganda.", False, "It is in Uganda.", False),
]


@pytest.fixture
def session(qtbot, loop):
    s = Session()
    yield s
    s.shutdown()


def test_the_queue_result_counts_completion_and_chat_and_shows_a_disagreement_in_amber(qtbot, session):
    queue = QueueView(session)
    qtbot.addWidget(queue)
    queue.result.show_rows([4], CHAT_ROWS)
    assert queue.result.summary.text() == "Batch 4: held 1/3 (0 after extra passes) · completion 2/3 · chat 1/3."
    lines = queue.result.facts.toPlainText().splitlines()
    assert lines[1] == ("#2 Kigali is a city in the country of — completion: Rwanda, a country · "
                        "chat: Kigali is a city in Tanzania. — not held in chat (wanted Rwanda)")
    html = queue.result.facts.toHtml()
    amber = html[html.index("not held in chat") - 80: html.index("not held in chat")]
    assert DISAGREE_COLOR.lstrip("#") in amber.lower()
    assert not queue.result.retry_button.isHidden()

    queue.result.show_rows([5], [row(1, " Rwanda.", True, None, None)])  # a base model: the completion only
    assert queue.result.summary.text() == "Batch 5: held 1/1 (0 after extra passes)."
    assert queue.result.facts.toPlainText() == "#1 Kigali is a city in the country of Rwanda. — held"


def test_the_log_shows_the_chat_reply_and_the_verdict_in_amber_where_they_disagree(qtbot, session):
    view = LogView(session)
    qtbot.addWidget(view)
    view.show_log(CHAT_ROWS, [])
    titles = [view.facts_table.horizontalHeaderItem(c).text() for c in range(view.facts_table.columnCount())]
    held, chat = titles.index("Held"), titles.index("Chat replied")
    assert not view.facts_table.isColumnHidden(chat)
    assert [view.facts_table.item(r, held).text() for r in range(3)] == ["held", "not held in chat", "not held"]
    assert view.facts_table.item(1, chat).text() == "Kigali is a city in Tanzania."
    assert view.facts_table.item(1, held).foreground().color().name() == DISAGREE_COLOR
    assert view.facts_table.item(2, held).foreground().color().name() == NOT_HELD_COLOR
    view.facts_table.selectRow(1)
    assert "completion: <i> <b" in view.written_label.text() and " · chat: <i>Kigali is a city in Tanzania.</i>" in (
        view.written_label.text())

    view.show_log([row(1, " Rwanda.", True, None, None)], [])  # a base model: no chat column
    assert view.facts_table.isColumnHidden(chat)
