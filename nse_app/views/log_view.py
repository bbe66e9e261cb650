"""The Log screen: every fact and batch of the project's SQLite log, searchable and filterable
by status, with each fact's probabilities and whether it is still retained."""

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
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from nse_engine.store.schema import FACT_STATUSES

from nse_app import jobs
from nse_app.session import Session
from nse_app.views.queue_view import fact_cells

FACT_COLUMNS = (
    ("id", "#"), ("subject", "Subject"), ("text", "Prompt"), ("target_new", "New object"),
    ("target_true", "True object"), ("status", "Status"), ("batch_id", "Batch"),
    ("prob_new_before", "P(new) before"), ("prob_true_before", "P(true) before"),
    ("prob_new_after", "P(new) after its batch"), ("prob_new_now", "P(new) now"),
    ("prob_true_now", "P(true) now"), ("retained", "Retained"), ("reason", "Note"),
)
BATCH_COLUMNS = (("id", "Batch"), ("method", "Method"), ("facts", "Facts"), ("applied_count", "Applied"),
                 ("outcome", "Outcome"), ("duration_s", "Seconds"), ("finished_at", "Finished"), ("undone", "Undone"))
STATUS_COLORS = {"applied": "#1b7f3b", "failed": "#b3261e", "undone": "#7a7a7a", "queued": "#1f5fa8"}


def format_cell(key: str, value: Any) -> str:
    if value is None:
        return ""
    if key.startswith("prob_"):
        return f"{value:.3f}"
    if key in ("retained", "undone"):
        return "yes" if value else "no"
    if key == "duration_s":
        return f"{value:.1f}"
    if key.endswith("_at"):
        return str(value)[:19].replace("T", " ") + " UTC"
    return str(value)


class LogView(QWidget):
    """Shows the Session project's log; refreshes itself whenever facts or batches change."""

    ask_requested = Signal(object)  # a fact (dict) to ask about in the chat

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._session = session
        self._facts: list[dict[str, Any]] = []

        self.search = QLineEdit(placeholderText="Search subject, prompt, objects, relation…")
        self.search.setClearButtonEnabled(True)
        self.status = QComboBox()
        self.status.addItem("All statuses", None)
        for status in FACT_STATUSES:
            self.status.addItem(status.capitalize(), status)
        self.ask_button = QPushButton("Ask the model about this fact")
        self.ask_button.clicked.connect(self._ask_selected)
        self.count_label = QLabel()
        filters = QHBoxLayout()
        filters.addWidget(self.search, 2)
        filters.addWidget(self.status)
        filters.addWidget(self.count_label)
        filters.addStretch()
        filters.addWidget(self.ask_button)

        self.facts_table = self._table([title for _k, title in FACT_COLUMNS])
        self.facts_table.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.facts_table.itemSelectionChanged.connect(self._update_buttons)
        self.batches_table = self._table([title for _k, title in BATCH_COLUMNS])
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.facts_table)
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
        data = await self._session.query(
            jobs.log_rows, status=self.status.currentData(), search=self.search.text().strip() or None
        )
        self.show_log(data)

    def show_log(self, data: dict[str, Any]) -> None:
        self._facts = data["facts"]
        self.facts_table.setRowCount(len(self._facts))
        for row, fact in enumerate(self._facts):
            values = fact | fact_cells(fact)
            for col, (key, _title) in enumerate(FACT_COLUMNS):
                item = QTableWidgetItem(format_cell(key, values.get(key)))
                if key == "status":
                    item.setForeground(QBrush(QColor(STATUS_COLORS.get(fact["status"], "#000000"))))
                if key == "retained" and fact.get("retained") is False:
                    item.setForeground(QBrush(QColor(STATUS_COLORS["failed"])))
                self.facts_table.setItem(row, col, item)
        self.facts_table.resizeColumnsToContents()
        self.facts_table.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        batches = data["batches"]
        self.batches_table.setRowCount(len(batches))
        for row, batch in enumerate(batches):
            values = batch | {"facts": len(batch["fact_ids"])}
            for col, (key, _title) in enumerate(BATCH_COLUMNS):
                self.batches_table.setItem(row, col, QTableWidgetItem(format_cell(key, values.get(key))))
        self.batches_table.resizeColumnsToContents()
        self.count_label.setText(f"{len(self._facts)} facts, {len(batches)} batches")
        self._update_buttons()

    def _selected_fact(self) -> dict[str, Any] | None:
        rows = self.facts_table.selectionModel().selectedRows()
        return self._facts[rows[0].row()] if rows else None

    def _update_buttons(self) -> None:
        self.ask_button.setEnabled(self._selected_fact() is not None)

    def _ask_selected(self) -> None:
        fact = self._selected_fact()
        if fact is not None:
            self.ask_requested.emit(fact)
