"""The Queue screen: facts waiting to be written, their order, the batch settings with an
Advanced panel of NSE hyper-parameters, and Run / Cancel with the job's progress."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from nse_app import jobs
from nse_app.session import Session
from nse_app.views.job_progress import JobProgress

COLUMNS = (("id", "#"), ("subject", "Subject"), ("text", "Prompt"), ("target_new", "New object"),
           ("target_true", "True object"), ("relation", "Relation"))
# Settings the user does not type: where they came from, and free-text notes.
_HIDDEN_HPARAMS = {"source", "notes"}


def fact_cells(fact: dict[str, Any]) -> dict[str, str]:
    """The display text of a fact row for the tables."""
    try:
        text = str(fact["prompt"]).format(fact["subject"])
    except (IndexError, KeyError, ValueError):
        text = str(fact["prompt"])
    return {
        "id": str(fact["id"]), "subject": fact["subject"], "text": text, "target_new": fact["target_new"],
        "target_true": fact.get("target_true") or "", "relation": fact.get("relation") or "",
    }


def parse_setting(text: str, default: Any) -> Any:
    """A typed value from the Advanced panel's text, shaped like the engine's default."""
    text = text.strip()
    if isinstance(default, bool):
        return text.lower() in ("1", "true", "yes")
    if isinstance(default, int):
        return int(text)
    if isinstance(default, float):
        return float(text)
    if isinstance(default, (list, tuple)):
        if "-" in text and "," not in text:
            first, last = (int(x) for x in text.split("-", 1))
            return list(range(first, last + 1))
        return [int(x) for x in text.replace(" ", "").split(",") if x]
    return text


def format_setting(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


class QueueView(QWidget):
    """Shows the Session's queued facts and starts batches; the rows come from the engine."""

    edit_requested = Signal(object)  # a queued fact (dict) to load into the Edit form

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._session = session
        self._facts: list[dict[str, Any]] = []
        self._defaults: dict[str, Any] = {}
        self._setting_edits: dict[str, QLineEdit] = {}
        self._running = False  # a run of consecutive batches is in progress

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels([title for _key, title in COLUMNS])
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.table.doubleClicked.connect(self.edit_selected)
        self.count_label = QLabel()

        self.edit_button = QPushButton("Edit")
        self.edit_button.clicked.connect(self.edit_selected)
        self.remove_button = QPushButton("Remove")
        self.remove_button.clicked.connect(self.remove_selected)
        self.up_button = QPushButton("Move up")
        self.up_button.clicked.connect(lambda: self.move_selected(-1))
        self.down_button = QPushButton("Move down")
        self.down_button.clicked.connect(lambda: self.move_selected(+1))
        row_buttons = QHBoxLayout()
        for button in (self.edit_button, self.remove_button, self.up_button, self.down_button):
            row_buttons.addWidget(button)
        row_buttons.addStretch()
        row_buttons.addWidget(self.count_label)

        self.method = QComboBox()
        self.method.addItem("NSE (neuron-level sequential editing)", "nse")
        self.batch_size = QSpinBox(minimum=1, maximum=10_000, value=10)
        self.batch_size.setToolTip("Facts written per batch; the queue runs as consecutive batches")
        settings = QGroupBox("Run settings")
        settings_form = QFormLayout(settings)
        settings_form.addRow("Method", self.method)
        settings_form.addRow("Batch size", self.batch_size)

        self.advanced = QGroupBox("Advanced: NSE hyper-parameters")
        self.advanced.setCheckable(True)
        self.advanced.setChecked(False)
        self.advanced.setToolTip("Defaults come from the engine's presets for this model")
        self._advanced_body = QWidget()
        self._advanced_form = QFormLayout(self._advanced_body)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self._advanced_body)
        reset = QPushButton("Reset to defaults")
        reset.clicked.connect(self._reset_settings)
        advanced_layout = QVBoxLayout(self.advanced)
        advanced_layout.addWidget(scroll)
        advanced_layout.addWidget(reset)
        self.advanced.toggled.connect(scroll.setVisible)
        self.advanced.toggled.connect(reset.setVisible)
        scroll.hide()
        reset.hide()

        self.run_button = QPushButton("Run queued edits")
        self.run_button.setObjectName("primary")
        self.run_button.setToolTip("Ctrl+R")
        self.run_button.clicked.connect(self.run_queue)
        self.progress = JobProgress(session)
        run_box = QHBoxLayout()
        run_box.addWidget(self.run_button)
        run_box.addWidget(self.progress, 1)

        left = QVBoxLayout()
        left.addWidget(self.table)
        left.addLayout(row_buttons)
        right = QVBoxLayout()
        right.addWidget(settings)
        right.addWidget(self.advanced)
        right.addStretch(1)

        def fold(on: bool) -> None:  # a folded Advanced panel gives its height back
            right.setStretchFactor(self.advanced, 1 if on else 0)
            right.setStretch(right.count() - 1, 0 if on else 1)

        self.advanced.toggled.connect(fold)
        top = QHBoxLayout()
        top.addLayout(left, 3)
        top.addLayout(right, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(run_box)

        session.facts_changed.connect(self.refresh)
        session.project_changed.connect(self._project_changed)
        session.busy_changed.connect(lambda _busy: self._update_buttons())
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self._update_buttons()

    # ---- display -----------------------------------------------------------------------------

    def refresh(self) -> None:
        self._session.start(self._refresh())

    async def _refresh(self) -> None:
        self.show_facts(await self._session.query(jobs.queued_facts))

    def show_facts(self, facts: list[dict[str, Any]]) -> None:
        selected = self.selected_ids()
        self._facts = facts
        self.table.setRowCount(len(facts))
        for row, fact in enumerate(facts):
            cells = fact_cells(fact)
            for col, (key, _title) in enumerate(COLUMNS):
                item = QTableWidgetItem(cells[key])
                item.setData(Qt.ItemDataRole.UserRole, fact["id"])
                self.table.setItem(row, col, item)
            if fact["id"] in selected:
                self.table.selectRow(row)
        self.table.resizeColumnsToContents()
        self.table.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.count_label.setText(f"{len(facts)} queued")
        self._update_buttons()

    def _project_changed(self, info: dict | None) -> None:
        self._defaults = {k: v for k, v in ((info or {}).get("hparams") or {}).items() if k not in _HIDDEN_HPARAMS}
        while self._advanced_form.rowCount():
            self._advanced_form.removeRow(0)
        self._setting_edits = {}
        for key, value in self._defaults.items():
            edit = QLineEdit(format_setting(value))
            edit.setObjectName(f"setting_{key}")
            self._setting_edits[key] = edit
            self._advanced_form.addRow(key.replace("_", " "), edit)
        self.refresh()

    def _reset_settings(self) -> None:
        for key, edit in self._setting_edits.items():
            edit.setText(format_setting(self._defaults[key]))

    def _update_buttons(self) -> None:
        busy = self._session.busy
        has_selection = bool(self.selected_ids())
        has_project = self._session.project_info is not None
        for button in (self.edit_button, self.remove_button, self.up_button, self.down_button):
            button.setEnabled(has_selection and not busy)
        self.run_button.setEnabled(has_project and bool(self._facts) and not busy and not self._running)

    # ---- values ------------------------------------------------------------------------------

    def selected_ids(self) -> list[int]:
        rows = sorted({index.row() for index in self.table.selectionModel().selectedRows()})
        return [self._facts[row]["id"] for row in rows if row < len(self._facts)]

    def overrides(self) -> dict[str, Any]:
        """Hyper-parameters the user changed in the Advanced panel (ValueError on bad input)."""
        if not self.advanced.isChecked():
            return {}
        changed: dict[str, Any] = {}
        for key, edit in self._setting_edits.items():
            default = self._defaults[key]
            try:
                value = parse_setting(edit.text(), default)
            except ValueError:
                raise ValueError(f"{key.replace('_', ' ')}: {edit.text()!r} is not a valid value") from None
            if value != (list(default) if isinstance(default, tuple) else default):
                changed[key] = value
        return changed

    # ---- flows -------------------------------------------------------------------------------

    def edit_selected(self) -> None:
        ids = self.selected_ids()
        if ids:
            self.edit_requested.emit(next(f for f in self._facts if f["id"] == ids[0]))

    def remove_selected(self) -> None:
        ids = self.selected_ids()
        if ids:
            self._session.start(self._session.remove_facts(ids))

    def move_selected(self, step: int) -> None:
        ids = [f["id"] for f in self._facts]
        selected = self.selected_ids()
        if not selected:
            return
        order = ids[:]
        positions = sorted((ids.index(i) for i in selected), reverse=step > 0)
        for pos in positions:
            new = pos + step
            if 0 <= new < len(order) and order[new] not in selected:
                order[pos], order[new] = order[new], order[pos]
        if order != ids:
            self._session.start(self._session.reorder_queue(order))

    def run_queue(self) -> None:
        """Write every fact queued now, in order, as consecutive batches (Ctrl+R)."""
        if self._running or self._session.busy or self._session.project_info is None:
            return
        self._session.start(self._run_queue())

    async def _run_queue(self) -> None:
        overrides = self.overrides()
        self._running = True
        try:
            queued = [f["id"] for f in await self._session.query(jobs.queued_facts)]
            size = self.batch_size.value()
            for start in range(0, len(queued), size):
                await self._session.run_batch(queued[start:start + size], overrides)
        finally:
            self._running = False
            self._update_buttons()
