"""The main window: one tab per screen, the menus and shortcuts, a status bar with the job's
progress, and the window state kept in QSettings."""

from __future__ import annotations

import logging

from PySide6.QtCore import QByteArray, QSettings, Qt, QUrl
from PySide6.QtGui import QAction, QCloseEvent, QDesktopServices, QIcon, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMessageBox, QPushButton, QTabWidget, QWidget

from nse_engine.facts import EditRequest
from nse_engine.model.summary import ModelSummary
from nse_engine.project_summary import ProjectSummary
from nse_engine.store.records import Batch

from nse_app import jobs
from nse_app.resources import resource
from nse_app.session import Session
from nse_app.views.about import about_html, documentation_file
from nse_app.views.chat_view import ChatView
from nse_app.views.edit_form import EditForm
from nse_app.views.elided_label import ElidedLabel
from nse_app.views.export_dialog import choose_export_folder, remember_export_folder
from nse_app.views.import_view import ImportView
from nse_app.views.job_progress import JobProgress
from nse_app.views.log_view import LogView
from nse_app.views.model_view import ModelView
from nse_app.views.queue_view import QueueView
from nse_app.views.retention_view import RetentionView

log = logging.getLogger(__name__)

APP_TITLE = "NSE Studio"


def window_title(project: ProjectSummary | None, model: ModelSummary | None) -> str:
    """"NSE Studio — project — model", each name once: a project named after its model (the
    model's name in the project's) does not repeat it."""
    parts = [APP_TITLE]
    if project is not None:
        parts.append(project.name)
    if model is not None and (project is None or model.name.casefold() not in project.name.casefold()):
        parts.append(model.name)
    return " — ".join(parts)


def set_primary(button: QPushButton, on: bool) -> None:
    """Give `button` the primary style (style.qss: #primary) or take it away."""
    if (button.objectName() == "primary") != on:
        button.setObjectName("primary" if on else "")
        button.style().unpolish(button)
        button.style().polish(button)


def undo_question(batch: Batch) -> str:
    """The undo confirmation: which batch, how many facts, and what becomes of them."""
    n, k = len(batch.fact_ids), batch.applied_count
    plural = k != 1
    undone = f"its {'facts are' if plural else 'fact is'}" if k == n else f"the {k} fact{'s' if plural else ''} it applied {'are' if plural else 'is'}"
    return (f"Undo batch {batch.id} ({n} fact{'' if n == 1 else 's'})?\n\nThe model goes back to how it was before "
            f"batch {batch.id}; {undone} marked undone in the Log, where “Queue again” puts "
            f"{'them' if plural else 'it'} back in the queue.")


_CANCELLED = {  # what quitting during each long job (Session.busy_job_names) means, for the quit question
    "run queue": "the batch of edits is not applied (the project stays as it was before it)",
    "undo last batch": "the batch is not undone (it stays in effect)",
    "export model": "nothing is exported (the folder stays as it was)",
    "load model": "the model is not loaded",
    "open project": "the project is not opened",
    "import file": "no fact of the file is queued",
}


class MainWindow(QMainWindow):
    """Hosts the screens; it wires them together but holds no engine state of its own."""

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.setObjectName("mainWindow")
        icon = resource("icon.png")
        if icon.exists():
            self.setWindowIcon(QIcon(str(icon)))

        self.model_view = ModelView(session)
        self.edit_form = EditForm(session)
        self.queue_view = QueueView(session)
        self.import_view = ImportView(session)
        self.log_view = LogView(session)
        self.retention_view = RetentionView(session)
        self.chat_view = ChatView(session)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        for view, title in (
            (self.model_view, "Model"),
            (self.edit_form, "Edit"),
            (self.queue_view, "Queue"),
            (self.import_view, "Import"),
            (self.log_view, "Log"),
            (self.retention_view, "Retention"),
            (self.chat_view, "Chat"),
        ):
            self.tabs.addTab(view, title)
        self.setCentralWidget(self.tabs)

        self.queue_view.edit_requested.connect(self._edit_fact)
        self.edit_form.queued.connect(lambda: self.tabs.setCurrentWidget(self.queue_view))
        self.log_view.ask_requested.connect(self._ask_about)
        self.chat_view.correct_requested.connect(self._correct)

        self.progress = JobProgress(session)
        self.progress.setMaximumWidth(560)
        self.status_label = ElidedLabel(mode=Qt.TextElideMode.ElideRight)
        self.statusBar().addWidget(self.status_label, 1)
        self.statusBar().addPermanentWidget(self.progress)
        session.status_message.connect(lambda text: self.statusBar().showMessage(text, 8000))

        self._build_actions()
        session.model_changed.connect(lambda _info: self._update_title())
        session.project_changed.connect(lambda _info: self._update_title())
        session.busy_changed.connect(self._update_actions)
        self._queued = 0  # facts in the queue, as the Queue screen last showed them
        session.model_changed.connect(lambda _info: self._update_primary())
        session.project_changed.connect(lambda _info: self._update_primary(0))
        self.queue_view.queue_size_changed.connect(self._update_primary)
        self._update_title()
        self._update_primary()
        self._update_actions(False)
        self._restore_state()

    # ---- actions -----------------------------------------------------------------------------

    def _action(self, text: str, slot, shortcut: QKeySequence | str | None = None, name: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.triggered.connect(slot)
        action.setObjectName(name)
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        self.new_project_action = self._action("&New project…", self.model_view.choose_new_project, QKeySequence.StandardKey.New, "newProject")
        self.open_project_action = self._action("&Open project…", self.model_view.choose_project, QKeySequence.StandardKey.Open, "openProject")
        self.open_model_action = self._action("Open &model folder…", self.model_view.choose_folder, None, "openModel")
        self.import_action = self._action("&Import facts…", self.import_facts, "Ctrl+I", "import")
        self.export_action = self._action("&Export edited model…", self.export_model, "Ctrl+E", "export")
        self.save_chart_action = self._action("Save retention &chart as PNG…", self.retention_view.save_png, None, "saveChart")
        quit_action = self._action("&Quit", self.close, "Ctrl+Q", "quit")  # StandardKey.Quit is unbound on Windows
        self.run_action = self._action("&Run queued edits", self.queue_view.run_queue, "Ctrl+R", "run")
        self.cancel_action = self._action("&Cancel", self.session.cancel, Qt.Key.Key_Escape, "cancel")
        self.undo_action = self._action("&Undo last batch", self.undo_last_batch, "Ctrl+Shift+Z", "undo")

        menus = self.menuBar()
        file_menu = menus.addMenu("&File")
        for action in (self.new_project_action, self.open_project_action, self.open_model_action, None,
                       self.import_action, self.export_action, self.save_chart_action, None, quit_action):
            file_menu.addSeparator() if action is None else file_menu.addAction(action)
        edit_menu = menus.addMenu("&Edit")
        for action in (self.run_action, self.cancel_action, None, self.undo_action):
            edit_menu.addSeparator() if action is None else edit_menu.addAction(action)
        view_menu = menus.addMenu("&View")
        for index in range(self.tabs.count()):
            view_menu.addAction(self._action(
                self.tabs.tabText(index), lambda _checked=False, i=index: self.tabs.setCurrentIndex(i),
                f"Ctrl+{index + 1}", f"screen{index + 1}",
            ))
        help_menu = menus.addMenu("&Help")
        help_menu.addAction(self._action("&Shortcuts", self._show_shortcuts, None, "shortcuts"))
        help_menu.addAction(self._action("&Documentation", self.open_documentation, QKeySequence.StandardKey.HelpContents, "documentation"))
        help_menu.addAction(self._action("&About NSE Studio", self.show_about, None, "about"))

    def _update_actions(self, busy: bool) -> None:
        has_project = self.session.project_info is not None
        for action in (self.export_action, self.undo_action, self.run_action):
            action.setEnabled(has_project and not busy)
        self.cancel_action.setEnabled(True)  # Esc also stops a chat reply

    def _update_title(self) -> None:
        self.setWindowTitle(window_title(self.session.project_info, self.session.model_info))
        self._update_actions(self.session.busy)

    def _update_primary(self, queued: int | None = None) -> None:
        """The primary style marks the next step: load a model, then create a project, then run the queue."""
        if queued is not None:
            self._queued = queued
        if self.session.model_info is None:
            step = self.model_view.default_button
        elif self.session.project_info is None:
            step = self.model_view.new_project_button
        else:
            step = self.queue_view.run_button if self._queued else None
        for button in (self.model_view.default_button, self.model_view.new_project_button, self.queue_view.run_button):
            set_primary(button, button is step)

    # ---- flows -------------------------------------------------------------------------------

    def import_facts(self) -> None:
        self.tabs.setCurrentWidget(self.import_view)
        self.import_view.choose_file()

    def export_model(self) -> None:
        folder = choose_export_folder(self)
        if folder:
            self.session.start(self._export(folder))

    async def _export(self, folder: str) -> None:
        """Export after asking what the user must agree to: a model with no edit, a folder replaced."""
        plan = await self.session.plan_export(folder)  # refuses the base model's folder and project folders
        if not plan.active_edits and not self._confirm(
            "Export the base model?",
            "Nothing is edited: no edit is in effect in this project, so the exported folder would hold the "
            "base model unchanged.\n\nExport the base model unchanged?",
        ):
            return
        if plan.replaces and not self._confirm(
            "Replace the folder's contents?",
            f"{folder} is not empty: it holds {plan.replaces_text} ({len(plan.replaces)} items). Exporting "
            "deletes all of it and puts the exported model in its place.\n\nReplace everything in this folder?",
        ):
            return
        await self.session.export_model(folder, replace=bool(plan.replaces), allow_unedited=not plan.active_edits)
        remember_export_folder(folder)

    def _confirm(self, title: str, text: str) -> bool:
        """Yes / No, No by default: the question of an action that cannot be taken back."""
        answer = QMessageBox.question(self, title, text, QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                      QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    def undo_last_batch(self) -> None:
        self.session.start(self._undo_last_batch())

    async def _undo_last_batch(self) -> None:
        """Ask, naming the batch and how many facts it holds, then undo it."""
        batch = next((b for b in reversed(await self.session.job(jobs.batches)) if not b.undone), None)
        if batch is None:
            QMessageBox.information(self, "Undo last batch", "No batch is in effect: there is nothing to undo.")
            return
        if QMessageBox.question(self, "Undo last batch", undo_question(batch)) == QMessageBox.StandardButton.Yes:
            await self.session.undo_last_batch()

    def _edit_fact(self, fact: EditRequest) -> None:
        self.edit_form.edit_existing(fact)
        self.tabs.setCurrentWidget(self.edit_form)

    def _correct(self, fact: EditRequest) -> None:
        self.tabs.setCurrentWidget(self.edit_form)
        self.edit_form.correct(fact)

    def _ask_about(self, fact: EditRequest) -> None:
        self.tabs.setCurrentWidget(self.chat_view)
        self.chat_view.ask_about(fact)

    def show_about(self) -> None:
        QMessageBox.about(self, "About NSE Studio", about_html(self.session.model_info))

    def open_documentation(self) -> None:
        """Open the README that ships with the app in the desktop's viewer (offline: a local file)."""
        readme = documentation_file()
        if readme is None or not QDesktopServices.openUrl(QUrl.fromLocalFile(str(readme))):
            QMessageBox.information(self, "Documentation", "The documentation is README.md and docs/ in NSE Studio's folder.")

    def _show_shortcuts(self) -> None:
        QMessageBox.information(
            self,
            "Shortcuts",
            "Ctrl+R  run the queued edits\nEsc  cancel the running job or chat reply\n"
            "Ctrl+I  import facts\nCtrl+E  export the edited model\nCtrl+Shift+Z  undo the last batch\n"
            "Ctrl+Enter  add the fact in the Edit form to the queue\nCtrl+N / Ctrl+O  new / open project\n"
            "Delete  remove the selected queued facts\nCtrl+1 … Ctrl+7  switch screens\nF1  documentation",
        )

    # ---- window state ------------------------------------------------------------------------

    def _restore_state(self) -> None:
        settings = QSettings()
        geometry = settings.value("window/geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        else:
            self.resize(1200, 800)
        state = settings.value("window/state")
        if isinstance(state, QByteArray):
            self.restoreState(state)
        self.tabs.setCurrentIndex(int(settings.value("window/tab", 0)))

    def save_state(self) -> None:
        settings = QSettings()
        settings.setValue("window/geometry", self.saveGeometry())
        settings.setValue("window/state", self.saveState())
        settings.setValue("window/tab", self.tabs.currentIndex())

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt override)
        if self.session.busy and not self._quit_anyway():
            event.ignore()
            return
        self.save_state()
        self.session.shutdown()
        super().closeEvent(event)

    def _quit_anyway(self) -> bool:
        """Quitting (Ctrl+Q, or closing the window) while a job runs cancels it: ask first, No by default."""
        names = self.session.busy_job_names
        lost = "; ".join(_CANCELLED.get(name, f"the {name} stops unfinished") for name in names)
        box = QMessageBox(QMessageBox.Icon.Question, "Quit while a job is running?",
                          f"{self.progress.label.text()}\n\nQuitting now cancels it: {lost}. Quit anyway?",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, self)
        box.setObjectName("quitDialog")
        box.setDefaultButton(QMessageBox.StandardButton.No)
        box.button(QMessageBox.StandardButton.Yes).setText("Quit and cancel")
        box.button(QMessageBox.StandardButton.No).setText("Keep running")
        return box.exec() == QMessageBox.StandardButton.Yes
