"""The Import screen: open or drop a CSV/JSON fact file, preview every row with its problems
highlighted, queue the valid rows, and save the rejected ones to fix them."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QBrush, QColor, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from nse_engine.errors import OutputFileError
from nse_engine.fact_files.validation import FIELDS
from nse_engine.store.output_paths import check_output_path
from nse_engine.store.records import FilePreview, FileRow, ImportSummary

from nse_app import jobs
from nse_app.diagnostics import show_error
from nse_app.session import Session
from nse_app.views import file_dialogs
from nse_app.views.wiring import push_button

_COLUMNS = ("line", *FIELDS, "problems")
_TITLES = {  # by column key: a field the engine adds without a title here fails at once, not a column off
    "line": "Line", "subject": "Subject", "prompt": "Prompt", "target_new": "New object", "target_true": "True object",
    "paraphrases": "Paraphrases", "questions": "Questions (chat)", "neighborhood": "Neighbourhood",
    "relation": "Relation", "problems": "Problems",
}
_BAD_ROW = QColor("#fde2e1")
FILE_FILTER = "Fact files (*.csv *.tsv *.json *.jsonl);;All files (*)"


def problem_texts(row: FileRow) -> list[str]:
    return [f"{p.field}: {p.message}" for p in row.problems]


class ImportView(QWidget):
    """Previews a fact file for the Session's project; it keeps only the preview rows."""

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._session = session
        self._path: str | None = None
        self._rows: list[FileRow] = []
        self._rejected: list[FileRow] = []
        self.setAcceptDrops(True)

        open_button = push_button("Open file…", self.choose_file,
                                  tooltip="Ctrl+I — or drop a CSV/JSON file anywhere on this screen")
        self.import_button = push_button("Import valid rows", self.import_valid, name="primary")
        self.export_button = push_button("Export rejected rows…", self.export_rejected)
        buttons = QHBoxLayout()
        buttons.addWidget(open_button)
        buttons.addStretch()
        buttons.addWidget(self.export_button)
        buttons.addWidget(self.import_button)

        self.summary = QLabel(
            "Drop a CSV or JSON file here, or open one. CSV columns: subject, prompt, target_new, "
            "target_true, paraphrases (separated by |), questions (asked in chat, separated by |), "
            "neighborhood (prompt => answer, separated by |), relation."
        )
        self.summary.setObjectName("importSummary")
        self.summary.setWordWrap(True)
        self.table = QTableWidget(0, len(_COLUMNS))
        self.table.setHorizontalHeaderLabels([_TITLES[key] for key in _COLUMNS])
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().hide()
        self.table.setWordWrap(False)

        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.table)
        layout.addLayout(buttons)
        session.project_changed.connect(lambda _info: self._update_buttons())
        self._update_buttons()

    # ---- flows -------------------------------------------------------------------------------

    def choose_file(self) -> None:
        path = file_dialogs.open_file(self, "Import facts", "import_facts", FILE_FILTER)
        if path:
            self.preview(path)

    def preview(self, path: str) -> None:
        self._session.start(self._preview(path))

    async def _preview(self, path: str) -> None:
        self.summary.setText(f"Reading {Path(path).name}…")
        result = await self._session.job(jobs.preview_import, path=path)
        self._path = path
        self.show_rows(result)

    def import_valid(self) -> None:
        if self._path:
            self._session.start(self._import(self._path))

    async def _import(self, path: str) -> None:
        result = await self._session.import_file(path)
        self.show_imported(result, path)

    def show_imported(self, result: ImportSummary, path: str) -> None:
        self._rejected = list(result.rejected)
        self.summary.setText(
            f"Imported {result.imported} facts from {Path(path).name} into the queue; "
            f"{len(self._rejected)} rows rejected." + ("  Export them to fix and re-import." if self._rejected else "")
        )
        self.import_button.setEnabled(False)
        self._update_buttons(imported=True)

    def export_rejected(self) -> None:
        if not self._rejected:
            return
        read = Path(self._path or "facts")
        path = file_dialogs.save_file(self, "Save the rejected rows", "rejected_rows", f"{read.stem}-rejected.csv",
                                      "CSV (*.csv)", read.parent if self._path else None)
        if path:
            self.save_rejected_to(path)

    def save_rejected_to(self, path: str) -> None:
        """Save the rejected rows where the dialog said, unless that is the previewed file or a
        project's own file: then say so, and write nothing."""
        try:
            check_output_path(Path(path), inputs=[Path(self._path)] if self._path else [])
        except OutputFileError as error:
            show_error(error, self)
            return
        self._session.start(self._export(path))

    async def _export(self, path: str) -> None:
        count = await self._session.job(jobs.export_rejected, rows=list(self._rejected), path=path, source=self._path)
        self._session.status_message.emit(f"Saved {count} rejected rows to {path}.")

    # ---- display -----------------------------------------------------------------------------

    def show_rows(self, result: FilePreview) -> None:
        self._rows = list(result.rows)
        self._rejected = [r for r in self._rows if r.problems]
        self.table.setRowCount(len(self._rows))
        for i, row in enumerate(self._rows):
            problems = problem_texts(row)
            values = {"line": str(row.line), **row.fields, "problems": "; ".join(problems)}
            for col, key in enumerate(_COLUMNS):
                item = QTableWidgetItem(values.get(key, ""))
                if problems:
                    item.setBackground(QBrush(_BAD_ROW))
                    item.setToolTip("\n".join(problems))
                self.table.setItem(i, col, item)
        self.table.resizeColumnsToContents()
        for col in (_COLUMNS.index(key) for key in ("prompt", "paraphrases", "questions", "neighborhood")):
            self.table.setColumnWidth(col, min(self.table.columnWidth(col), 260))
        self.table.horizontalHeader().setSectionResizeMode(len(_COLUMNS) - 1, QHeaderView.ResizeMode.Stretch)
        valid = len(self._rows) - len(self._rejected)
        text = (f"{Path(result.path).name} — {result.format}: {len(self._rows)} rows, "
                f"{valid} valid, {len(self._rejected)} with problems (highlighted; hover for details).")
        if result.warnings:
            text += "  Note: " + "; ".join(result.warnings)
        if self._session.project_info is None:
            text += "  Open a project to import."
        self.summary.setText(text)
        self.import_button.setText(f"Import {valid} valid rows")
        self._update_buttons()

    def _update_buttons(self, imported: bool = False) -> None:
        valid = len(self._rows) - len(self._rejected)
        has_project = self._session.project_info is not None
        if not imported:
            self.import_button.setEnabled(bool(self._path) and valid > 0 and has_project)
        self.export_button.setEnabled(bool(self._rejected))

    # ---- drag and drop -----------------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt override)
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 (Qt override)
        files = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if files:
            event.acceptProposedAction()
            self.preview(files[0])
