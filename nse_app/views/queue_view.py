"""The Queue screen: facts waiting to be written, their order, the batch settings with an
Advanced panel of NSE hyper-parameters (and the λ/β schedule they give), Run / Cancel with the
job's progress, and after a run what the model writes for its facts, with Retry for those that
did not hold.

The Advanced panel (settings_panel.py) shows the project's settings with typed editors and hands
the ones the user changed to the batch job, where the engine's settings parser (the one
`nse edit --set` uses) checks them together; a bad value comes back as a SettingsError before
anything is edited."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QScrollArea,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from nse_engine.facts import EditRequest
from nse_engine.errors import SettingsError
from nse_engine.method_names import METHOD_NAMES
from nse_engine.project_summary import ProjectSummary
from nse_engine.store.log_rows import BatchChanges, LogRow
from nse_engine.store.records import ScheduleStep

from nse_app import jobs
from nse_app.session import Session
from nse_app.views.settings_panel import AdvancedSettings
from nse_app.views.wiring import menu_action, push_button, show_job_result
from nse_app.views.written import BatchResult

COLUMNS = (("id", "#"), ("subject", "Subject"), ("text", "Prompt"), ("target_new", "New object"),
           ("target_true", "True object"), ("relation", "Relation"))


def fact_cells(fact: EditRequest) -> dict[str, str]:
    """The display text of a fact row for the tables."""
    try:
        text = fact.text
    except (IndexError, KeyError, ValueError):
        text = fact.prompt
    return {
        "id": str(fact.fact_id), "subject": fact.subject, "text": text, "target_new": fact.target_new,
        "target_true": fact.target_true or "", "relation": fact.relation or "",
    }


def schedule_html(steps: list[ScheduleStep]) -> str:
    """The λ/β schedule as a small table (multiplier per edits so far), or "off"."""
    if not steps:
        return "λ/β schedule: off (schedule_ramp_edits is 0: every round uses λ and β as set)"
    cells = "".join(
        f"<tr><td>{s.earlier_edits:,}</td><td>×{s.share:.2f}</td><td>{s.mom2_update_weight:.4g}</td>"
        f"<td>{s.earlier_edits_weight:.4g}</td></tr>"
        for s in steps
    )
    return ("λ/β schedule (a round starting with this many earlier edits):"
            "<table cellspacing='0' cellpadding='2'><tr><th>edits so far</th><th>multiplier</th><th>λ</th><th>β</th></tr>"
            f"{cells}</table>")


class QueueView(QWidget):
    """Shows the Session's queued facts and starts batches; the rows come from the engine."""

    edit_requested = Signal(object)  # a queued fact (EditRequest) to load into the Edit form
    queue_size_changed = Signal(int)  # how many facts are queued, once the queue is shown

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._session = session
        self._facts: list[EditRequest] = []
        self._running = False  # a run of consecutive batches is in progress

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels([title for _key, title in COLUMNS])
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.table.doubleClicked.connect(self.edit_selected)
        self.count_label = QLabel()

        self.edit_button = push_button("Edit", self.edit_selected)
        self.remove_button = push_button("Remove", self.remove_selected)
        remove_action = menu_action("Remove", self.remove_selected, self.table)
        remove_action.setShortcut(QKeySequence.StandardKey.Delete)
        remove_action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        self.table.addAction(remove_action)
        self.up_button = push_button("Move up", lambda: self.move_selected(-1))
        self.down_button = push_button("Move down", lambda: self.move_selected(+1))
        row_buttons = QHBoxLayout()
        for button in (self.edit_button, self.remove_button, self.up_button, self.down_button):
            row_buttons.addWidget(button)
        row_buttons.addStretch()
        row_buttons.addWidget(self.count_label)

        self.method = QLabel()  # one method per project: a label, not a choice
        self.method.setObjectName("runMethod")
        self.method.setToolTip("The editing method is fixed per project (New project chooses it)")
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
        self.settings_panel = AdvancedSettings()
        self.settings_panel.schedule_inputs_changed.connect(self.refresh_schedule)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.settings_panel)
        reset = push_button("Reset to defaults", self._reset_settings)
        self.schedule_label = QLabel()
        self.schedule_label.setObjectName("schedule")
        self.schedule_label.setWordWrap(True)
        advanced_layout = QVBoxLayout(self.advanced)
        advanced_layout.addWidget(scroll)
        advanced_layout.addWidget(self.schedule_label)
        advanced_layout.addWidget(reset)
        for widget in (scroll, self.schedule_label, reset):
            self.advanced.toggled.connect(widget.setVisible)
            widget.hide()
        self.advanced.toggled.connect(lambda _on: self.refresh_schedule())

        self.run_button = push_button("Run queued edits", self.run_queue, tooltip="Ctrl+R", name="primary")
        self.result = BatchResult(session)
        run_box = QHBoxLayout()  # progress and Cancel: the window's one progress area, in the status bar
        run_box.addWidget(self.run_button)
        run_box.addStretch(1)

        left = QVBoxLayout()
        left.addWidget(self.table)
        left.addLayout(row_buttons)
        left.addWidget(self.result)
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
        session.changed.connect(self.apply_changes)
        session.project_changed.connect(self._project_changed)
        session.busy_changed.connect(lambda _busy: self._update_buttons())
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self._update_buttons()

    # ---- display -----------------------------------------------------------------------------

    def refresh(self) -> None:
        show_job_result(self._session, jobs.queued_facts, self.show_facts)

    def apply_changes(self, changes: BatchChanges) -> None:
        """A batch took its facts out of the queue (an undo puts none back, and ends the last
        run's result when it undoes one of its batches)."""
        if changes.undone and changes.batch_id in self.result.batch_ids:
            self.result.show_rows([], [])
        gone = set(changes.fact_ids)
        if any(f.fact_id in gone for f in self._facts):
            self.show_facts([f for f in self._facts if f.fact_id not in gone])

    def show_facts(self, facts: list[EditRequest]) -> None:
        selected = self.selected_ids()
        self._facts = facts
        self.table.setRowCount(len(facts))
        for row, fact in enumerate(facts):
            cells = fact_cells(fact)
            for col, (key, _title) in enumerate(COLUMNS):
                item = QTableWidgetItem(cells[key])
                item.setData(Qt.ItemDataRole.UserRole, fact.fact_id)
                self.table.setItem(row, col, item)
            if fact.fact_id in selected:
                self.table.selectRow(row)
        self.table.resizeColumnsToContents()
        self.table.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.count_label.setText(f"{len(facts)} queued")
        self._update_buttons()
        self.queue_size_changed.emit(len(facts))

    def _project_changed(self, info: ProjectSummary | None) -> None:
        self.settings_panel.show_settings(info.known_settings() if info is not None else {})
        self.method.setText(METHOD_NAMES.get(info.method, info.method) if info is not None else "—")
        self.result.show_rows([], [])
        self.refresh()
        self.refresh_schedule()

    def refresh_schedule(self) -> None:
        """Show the λ/β schedule the Advanced panel's settings give."""
        if self._session.project_info is None:
            self.schedule_label.setText("")
        else:
            self._session.start(self._refresh_schedule())

    async def _refresh_schedule(self) -> None:
        try:
            steps = await self._session.job(jobs.regularisation_schedule, overrides=self.overrides())
        except SettingsError as error:  # shown in place: the panel is being typed into
            self.schedule_label.setText(f"λ/β schedule: {html.escape(str(error))}")
            return
        self.schedule_label.setText("" if steps is None else schedule_html(steps))

    def _reset_settings(self) -> None:
        self.settings_panel.reset()
        self.refresh_schedule()

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
        return [self._facts[row].fact_id for row in rows if row < len(self._facts)]

    def overrides(self) -> dict[str, str]:
        """The settings the user changed in the Advanced panel, as `--set` takes them (the engine parses them)."""
        return self.settings_panel.overrides() if self.advanced.isChecked() else {}

    # ---- flows -------------------------------------------------------------------------------

    def edit_selected(self) -> None:
        ids = self.selected_ids()
        if ids:
            self.edit_requested.emit(next(f for f in self._facts if f.fact_id == ids[0]))

    def remove_selected(self) -> None:
        ids = self.selected_ids()
        if ids:
            self._session.start(self._session.remove_facts(ids))

    def move_selected(self, step: int) -> None:
        ids = [f.fact_id for f in self._facts]
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
        overrides = self.overrides()  # checked by the run's job, before it edits anything
        self._running = True
        try:
            queued = [f.fact_id for f in await self._session.job(jobs.queued_facts)]
            batch_ids: list[int] = []
            rows: list[LogRow] = []
            self.result.show_rows([], [])

            def show(changes: BatchChanges) -> None:  # the result grows from each batch's record
                batch_ids.append(changes.batch_id)
                rows.extend(changes.own_rows)
                self.result.show_rows(batch_ids, rows)

            await self._session.run_queue(queued, self.batch_size.value(), overrides, on_batch=show)
        finally:
            self._running = False
            self._update_buttons()
