"""A batch's or an undo's record (BatchChanges) carries the Log rows it changed: the Log and the
Chat's quick questions update themselves from it, as their filter and list would read the log,
without asking the engine again (issue 39 item 1)."""

from __future__ import annotations

import pytest

from nse_engine.facts import EditRequest
from nse_engine.store.log_rows import BatchChanges, LogRow

from nse_app.session import Session
from nse_app.views.chat_view import ChatView
from nse_app.views.log_view import LogView

from app.conftest import wait_idle


def request(fact_id: int, subject: str) -> EditRequest:
    return EditRequest(subject, "The mother tongue of {} is", "English", "French", fact_id=fact_id)


def row(fact_id: int, subject: str, status: str, batch_id: int | None = 1) -> LogRow:
    return LogRow(request(fact_id, subject), status, batch_id, None, None, None, 0.1, 0.5, 0.8, 0.05, 0.4, 0.2,
                  status == "applied")


def record(batch_id: int, rows: list[LogRow], undone: bool = False) -> BatchChanges:
    return BatchChanges(batch_id, [], {}, None, undone=undone, fact_ids=tuple(r.id for r in rows), rows=tuple(rows))


@pytest.fixture
def session(qtbot, loop):
    s = Session()
    yield s
    s.shutdown()


def _asked_nothing(session: Session) -> bool:
    return not session.worker.busy and not session._tasks


def _shown(view: LogView) -> list[int]:
    return [int(view.facts_table.item(r, 0).text()) for r in range(view.facts_table.rowCount())]


def test_the_log_takes_a_batchs_rows_from_its_record_as_its_filter_shows_them(qtbot, session):
    view = LogView(session)
    qtbot.addWidget(view)
    view.status.setCurrentIndex(view.status.findData("applied"))
    view.search.setText("dar")  # matches "Darrieux", not "Yasuda"
    qtbot.wait(400)  # the search waits for typing to pause
    wait_idle(qtbot, session)  # the filter's own read (no project open: nothing)
    view.show_log([row(1, "Danielle Darrieux", "applied")], [])

    view.apply_changes(record(2, [row(1, "Danielle Darrieux", "applied"), row(2, "Gisèle Darrieux", "applied", 2),
                                  row(3, "Toko Yasuda", "applied", 2), row(4, "Emile Darrieux", "failed", 2)]))
    assert _shown(view) == [1, 2]
    assert _asked_nothing(session)

    view.apply_changes(record(2, [row(2, "Gisèle Darrieux", "undone", 2)], undone=True))
    assert _shown(view) == [1]
    assert _asked_nothing(session)


def test_the_chats_quick_questions_follow_a_batch_and_its_undo_from_their_records(qtbot, session):
    view = ChatView(session)
    qtbot.addWidget(view)
    wait_idle(qtbot, session)
    items = lambda: [view.fact_box.itemText(i) for i in range(view.fact_box.count())]  # noqa: E731

    view.apply_changes(record(1, [row(3, "Toko Yasuda", "applied"), row(1, "Danielle Darrieux", "applied"),
                                  row(2, "Emile Darrieux", "failed")]))
    assert [text.split()[0] for text in items()] == ["#1", "#3"]
    assert _asked_nothing(session)

    view.apply_changes(record(1, [row(3, "Toko Yasuda", "undone"), row(1, "Danielle Darrieux", "applied")], undone=True))
    assert [text.split()[0] for text in items()] == ["#1"]
    assert _asked_nothing(session)
