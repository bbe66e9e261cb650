"""The Log screen: every fact and batch of the project's SQLite log, searchable and filterable
by status, with each fact's probabilities, whether it held when its batch ended (and what the
model wrote), whether it is still retained, Retry for the facts that did not hold, and Queue again
for undone (or failed) facts: the selected ones, or those of the selected undone batch."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from nse_engine.store.log_rows import FACT_STATUSES, BatchChanges, LogRow
from nse_engine.store.records import Batch

from nse_app import jobs
from nse_app.session import Session
from nse_app.views.queue_view import fact_cells
from nse_app.views.wiring import menu_action, push_button
from nse_app.views.written import NOT_HELD_COLOR, STATUS_COLORS, verdict_color, written_html

FACT_COLUMNS = (
    ("id", "#"), ("subject", "Subject"), ("text", "Prompt"), ("target_new", "New object"),
    ("target_true", "True object"), ("status", "Status"), ("batch_id", "Batch"),
    ("prob_new_before", "P(new) before"), ("prob_true_before", "P(true) before"),
    ("prob_new_after", "P(new) after its batch"), ("prob_new_now", "P(new) now"),
    ("prob_true_now", "P(true) now"), ("retained", "Retained"), ("held", "Held"),
    ("continuation", "Model wrote"), ("chat_reply", "Chat replied"), ("reason", "Note"),
)
UNDONE = "undone"  # the Retained cell of a fact whose batch was undone: nothing of it is in effect
BATCH_COLUMNS = (("id", "Batch"), ("method", "Method"), ("facts", "Facts"), ("applied_count", "Applied"),
                 ("not_held", "Not held"), ("outcome", "Outcome"), ("duration_s", "Seconds"),
                 ("finished_at", "Finished"), ("undone", "Undone"))


def format_cell(key: str, value: Any) -> str:
    if value is None:
        return ""
    if key.startswith("prob_"):
        return f"{value:.3f}"
    if key in ("retained", "undone"):
        return value if value == UNDONE else "yes" if value else "no"
    if key == "duration_s":
        return f"{value:.1f}"
    if key.endswith("_at"):
        return str(value)[:19].replace("T", " ") + " UTC"
    return str(value)


def fact_values(fact: LogRow) -> dict[str, Any]:
    """A log row's cells by column key (an undone fact: no "now" figures, and "undone" for retained)."""
    columns = {key: getattr(fact, key, None) for key, _title in FACT_COLUMNS}
    if fact.status == "undone":
        columns["retained"] = UNDONE
    return (columns | fact_cells(fact.request)
            | {"id": fact.id, "held": fact.verdict})


def batch_values(batch: Batch) -> dict[str, Any]:
    return {key: getattr(batch, key, None) for key, _title in BATCH_COLUMNS} | {"facts": len(batch.fact_ids)}


class LogView(QWidget):
    """Shows the Session project's log; refreshes itself whenever facts or batches change."""

    ask_requested = Signal(object)  # a fact (EditRequest) to ask about in the chat

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._session = session
        self._facts: list[LogRow] = []
        self._batches: list[Batch] = []

        self.search = QLineEdit(placeholderText="Search subject, prompt, objects, relation…")
        self.search.setClearButtonEnabled(True)
        self.status = QComboBox()
        self.status.addItem("All statuses", None)
        for status in FACT_STATUSES:
            self.status.addItem(status.capitalize(), status)
        self.ask_button = push_button("Ask the model about this fact", self._ask_selected)
        self.retry_button = push_button("Retry facts that did not hold", self.retry_not_held,
                                        tooltip="Queue again the applied facts of the selected batch (of every batch "
                                                "when none is selected) that the model did not say, for the next run")
        self.queue_again_button = push_button("Queue again", self.queue_again)
        self.queue_again_action = menu_action("Queue again", self.queue_again, self)
        self.count_label = QLabel()
        filters = QHBoxLayout()
        filters.addWidget(self.search, 2)
        filters.addWidget(self.status)
        filters.addWidget(self.count_label)
        filters.addStretch()
        filters.addWidget(self.retry_button)
        filters.addWidget(self.queue_again_button)
        filters.addWidget(self.ask_button)

        self.facts_table = self._table([title for _k, title in FACT_COLUMNS])
        self.facts_table.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.facts_table.itemSelectionChanged.connect(self._update_buttons)
        self.facts_table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)  # queue several again
        self.written_label = QLabel()
        self.written_label.setObjectName("written")
        self.written_label.setWordWrap(True)
        self.written_label.setToolTip("What the model wrote after the selected fact's prompt (and, for a chat model, "
                                      "replied to its chat question) when its batch ended")
        self.batches_table = self._table([title for _k, title in BATCH_COLUMNS])
        self.batches_table.itemSelectionChanged.connect(self._update_buttons)
        for table in (self.facts_table, self.batches_table):  # right-click: Queue again
            table.addAction(self.queue_again_action)
            table.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        facts = QWidget()
        facts_layout = QVBoxLayout(facts)
        facts_layout.setContentsMargins(0, 0, 0, 0)
        facts_layout.addWidget(self.facts_table)
        facts_layout.addWidget(self.written_label)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(facts)
        batches = QWidget()
        batches_layout = QVBoxLayout(batches)
        batches_layout.setContentsMargins(0, 0, 0, 0)
        batches_layout.addWidget(QLabel("Batches"))
        batches_layout.addWidget(self.batches_table)
        split.addWidget(batches)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)

        layout = QVBoxLayout(self)
        layout.addLayout(filters)
        layout.addWidget(split)

        self._search_timer = QTimer(self, singleShot=True, interval=250)
        self._search_timer.timeout.connect(self.refresh)
        self.search.textChanged.connect(self._search_timer.start)
        self.status.currentIndexChanged.connect(self.refresh)
        session.facts_changed.connect(self.refresh)
        session.changed.connect(self.apply_changes)
        session.project_changed.connect(lambda _info: self.refresh())
        self._update_buttons()

    @staticmethod
    def _table(titles: list[str]) -> QTableWidget:
        table = QTableWidget(0, len(titles))
        table.setHorizontalHeaderLabels(titles)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        table.verticalHeader().hide()
        return table

    def refresh(self) -> None:
        self._session.start(self._refresh())

    async def _refresh(self) -> None:
        rows = await self._session.job(jobs.log_rows, status=self.status.currentData(), search=self._search_text())
        self.show_log(rows, await self._session.job(jobs.batches))

    def _search_text(self) -> str | None:
        return self.search.text().strip() or None

    def apply_changes(self, changes: BatchChanges) -> None:
        """Take the rows of the facts a batch or an undo changed, and its batch row, from its record
        (as the filter shows them); nothing is read from the log again."""
        status, search = self.status.currentData(), self._search_text()
        rows = [row for row in changes.rows if row.matches(status, search)]
        changed = set(changes.fact_ids)
        facts = sorted([f for f in self._facts if f.id not in changed] + rows, key=lambda f: f.id)
        batches = self._batches
        if changes.batch is not None:
            batches = sorted([b for b in batches if b.id != changes.batch.id] + [changes.batch], key=lambda b: b.id)
        self.show_log(facts, batches)

    def show_log(self, facts: list[LogRow], batches: list[Batch]) -> None:
        self._facts, self._batches = facts, batches
        self.facts_table.setRowCount(len(facts))
        for row, fact in enumerate(facts):
            values = fact_values(fact)
            for col, (key, _title) in enumerate(FACT_COLUMNS):
                item = QTableWidgetItem(format_cell(key, values.get(key)))
                if key == "status":
                    item.setForeground(QBrush(QColor(STATUS_COLORS.get(fact.status, "#000000"))))
                if (key == "retained" and fact.retained is False) or (key == "held" and fact.held is False):
                    item.setForeground(QBrush(QColor(NOT_HELD_COLOR)))
                if key == "held" and fact.disagrees:  # amber: completion and chat disagree
                    item.setForeground(QBrush(QColor(verdict_color(fact))))
                self.facts_table.setItem(row, col, item)
        chat_column = [key for key, _title in FACT_COLUMNS].index("chat_reply")
        self.facts_table.setColumnHidden(chat_column, not any(f.chat_reply is not None for f in facts))  # base models
        self.facts_table.resizeColumnsToContents()
        self.facts_table.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.batches_table.setRowCount(len(batches))
        for row, batch in enumerate(batches):
            values = batch_values(batch)
            for col, (key, _title) in enumerate(BATCH_COLUMNS):
                self.batches_table.setItem(row, col, QTableWidgetItem(format_cell(key, values.get(key))))
        self.batches_table.resizeColumnsToContents()
        self.count_label.setText(f"{len(facts)} fact{'' if len(facts) == 1 else 's'}, "
                                 f"{len(batches)} batch{'' if len(batches) == 1 else 'es'}")
        self._update_buttons()

    def _selected_fact(self) -> LogRow | None:
        rows = self.facts_table.selectionModel().selectedRows()
        return self._facts[min(r.row() for r in rows)] if rows else None

    def _selected_facts(self) -> list[LogRow]:
        return [self._facts[r] for r in sorted(i.row() for i in self.facts_table.selectionModel().selectedRows())]

    def _selected_batch(self) -> Batch | None:
        rows = self.batches_table.selectionModel().selectedRows()
        return self._batches[rows[0].row()] if rows else None

    def _retry_batches(self) -> list[int]:
        """The batches Retry acts on: the selected one, or every one, in effect with facts that did not hold."""
        selected = self._selected_batch()
        return [b.id for b in ([selected] if selected else self._batches) if b.not_held and not b.undone]

    def _queue_again_targets(self) -> tuple[list[int], list[int], str]:
        """What Queue again acts on: (fact ids, batch ids, what the button says it does). The
        selected facts that can be queued again; with none of those, the selected undone batch."""
        facts = [f.id for f in self._selected_facts() if f.status in jobs.REQUEUABLE]
        if facts:
            return facts, [], f"Put the selected undone or failed facts ({len(facts)}) back at the end of the queue"
        batch = self._selected_batch()
        if batch is not None and batch.undone:
            status = {f.id: f.status for f in self._facts}  # a fact not listed here may still be undone
            if not any(status.get(i, "undone") in jobs.REQUEUABLE for i in batch.fact_ids):
                return [], [], f"The facts of batch {batch.id} are queued again (or applied): none is left to queue"
            return [], [batch.id], f"Put the undone facts of batch {batch.id} back at the end of the queue"
        return [], [], "Select undone (or failed) facts, or an undone batch, to put them back in the queue"

    def _update_buttons(self) -> None:
        fact = self._selected_fact()
        self.ask_button.setEnabled(fact is not None)
        self.written_label.setText(written_html(fact) if fact is not None else "")
        self.retry_button.setEnabled(bool(self._retry_batches()))
        fact_ids, batch_ids, why = self._queue_again_targets()
        for widget in (self.queue_again_button, self.queue_again_action):
            widget.setEnabled(bool(fact_ids or batch_ids))
            widget.setToolTip(why)

    def queue_again(self) -> None:
        """Put the selected undone or failed facts (or the selected undone batch's) back in the queue, in one action."""
        fact_ids, batch_ids, _why = self._queue_again_targets()
        if fact_ids or batch_ids:
            self._session.start(self._session.requeue_facts(fact_ids, batch_ids))

    def retry_not_held(self) -> None:
        batch_ids = self._retry_batches()
        if batch_ids:
            self._session.start(self._session.requeue_not_held(batch_ids))

    def _ask_selected(self) -> None:
        fact = self._selected_fact()
        if fact is not None:
            self.ask_requested.emit(fact.request)
