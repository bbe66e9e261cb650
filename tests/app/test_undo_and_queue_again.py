"""After "Undo last batch" the Log tells the truth: the undone facts read undone (no "now" figures,
no retention), Queue again puts them back in the queue (selected facts, or a whole undone batch,
in one action), and the confirmation names the batch and how many facts it holds."""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox

from nse_engine.store.records import Batch

from app.conftest import FACT, JOB_TIMEOUT_MS, error_dialogs, queue_fact, wait_idle
from nse_app.main_window import undo_question

SECOND = {"subject": "Toko Yasuda", "prompt": "{} plays the", "target_new": "piano", "target_true": "guitar"}


def _cell(window, row: int, header: str) -> str:
    table = window.log_view.facts_table
    column = next(c for c in range(table.columnCount()) if table.horizontalHeaderItem(c).text() == header)
    return table.item(row, column).text()


def _statuses(window) -> list[str]:
    return [f.status for f in window.log_view._facts]


def test_undone_facts_read_undone_and_queue_again_puts_them_back(qtbot, project_window, monkeypatch):
    window = project_window
    session, log, queue = window.session, window.log_view, window.queue_view
    queue_fact(qtbot, window, FACT)
    queue_fact(qtbot, window, SECOND)
    with qtbot.waitSignal(session.changed, timeout=JOB_TIMEOUT_MS):
        queue.run_queue()
    wait_idle(qtbot, session)
    qtbot.waitUntil(lambda: _statuses(window) == ["applied", "applied"])
    for row in (0, 1):  # measured by their batch: figures for now, and retained yes or no
        assert _cell(window, row, "P(new) now") and _cell(window, row, "Retained") in ("yes", "no")

    asked: list[str] = []

    def answer_yes(_parent, _title, text, *args, **kwargs):
        asked.append(text)
        return QMessageBox.StandardButton.Yes

    monkeypatch.setattr(QMessageBox, "question", answer_yes)
    with qtbot.waitSignal(session.changed, timeout=JOB_TIMEOUT_MS):
        window.undo_action.trigger()
    wait_idle(qtbot, session)
    assert len(asked) == 1 and asked[0].startswith("Undo batch 1 (2 facts)?"), asked
    qtbot.waitUntil(lambda: _statuses(window) == ["undone", "undone"])
    for row in (0, 1):
        assert (_cell(window, row, "P(new) now"), _cell(window, row, "P(true) now")) == ("", "")
        assert _cell(window, row, "Retained") == "undone"
        assert _cell(window, row, "P(new) after its batch")  # what the batch did stays on record
    assert not log.queue_again_button.isEnabled()

    window.tabs.setCurrentWidget(log)
    log.facts_table.selectRow(1)  # one selected fact
    assert log.queue_again_button.isEnabled() and "selected" in log.queue_again_button.toolTip()
    log.queue_again_button.click()
    qtbot.waitUntil(lambda: queue.table.rowCount() == 1, timeout=JOB_TIMEOUT_MS)
    wait_idle(qtbot, session)
    qtbot.waitUntil(lambda: _statuses(window) == ["undone", "queued"])
    assert queue.table.item(0, 1).text() == SECOND["subject"]

    log.facts_table.clearSelection()
    log.batches_table.selectRow(0)  # the undone batch: the rest of its facts, from the context menu's entry
    assert log.queue_again_action in log.batches_table.actions()
    assert log.queue_again_action.isEnabled() and "batch 1" in log.queue_again_action.toolTip()
    log.queue_again_action.trigger()
    qtbot.waitUntil(lambda: queue.table.rowCount() == 2, timeout=JOB_TIMEOUT_MS)
    wait_idle(qtbot, session)
    qtbot.waitUntil(lambda: _statuses(window) == ["queued", "queued"])
    assert [queue.table.item(r, 1).text() for r in range(2)] == [SECOND["subject"], FACT["subject"]]
    for row in (0, 1):  # queued, not in effect: still no figures for now
        assert (_cell(window, row, "P(new) now"), _cell(window, row, "Retained")) == ("", "")
    log.batches_table.clearSelection()
    log.batches_table.selectRow(0)  # all its facts are queued again: nothing is left to queue
    assert not log.queue_again_button.isEnabled() and "queued again" in log.queue_again_button.toolTip()
    assert not error_dialogs(), [d.text() for d in error_dialogs()]


def _batch(batch_id: int, n_facts: int, applied: int) -> Batch:
    return Batch(id=batch_id, method="nse", hparams={}, started_at="2026-12-07T10:00:00", finished_at="2026-12-07T10:01:00",
                 duration_s=60.0, outcome="applied", fact_ids=tuple(range(1, n_facts + 1)), applied_count=applied,
                 state_file=None, state_sha256=None, undone_at=None, not_held=0)


def test_the_undo_confirmation_names_the_batch_and_its_fact_count():
    assert undo_question(_batch(3, 5, 5)).startswith("Undo batch 3 (5 facts)?\n\n")
    assert "its facts are marked undone" in undo_question(_batch(3, 5, 5))
    assert "the 4 facts it applied are marked undone" in undo_question(_batch(3, 5, 4))
    one = undo_question(_batch(1, 1, 1))
    assert one.startswith("Undo batch 1 (1 fact)?") and "its fact is marked undone" in one and "puts it back" in one
