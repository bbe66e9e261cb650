"""The Model screen: choose and load a model, see what it is, open or create a project."""

from __future__ import annotations

from html import escape

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QVBoxLayout,
    QWidget,
)

from nse_engine.method_names import method_label
from nse_engine.model.builtin_models import BUILTIN_MODELS, DEFAULT_MODEL_NAME
from nse_engine.model.summary import ModelSummary, RecentModel
from nse_engine.paths import data_dir
from nse_engine.project_summary import ProjectSummary

from nse_app import jobs
from nse_app.recent_projects import recent_projects
from nse_app.session import Session
from nse_app.views import file_dialogs
from nse_app.views.elided_label import ElidedLabel
from nse_app.views.new_project_dialog import NewProjectDialog
from nse_app.views.preparation_card import PreparationCard
from nse_app.views.wiring import push_button, show_job_result

_FIELDS = (
    ("name", "Name"),
    ("architecture", "Architecture"),
    ("layers", "Layers"),
    ("parameters", "Parameters"),
    ("dtype", "Precision"),
    ("device", "Device"),
    ("edit_layers", "Edited layers"),
    ("projection", "Edited modules"),
    ("memory", "Memory plan"),
)


def _format_params(n: object) -> str:
    if not isinstance(n, int):
        return str(n)
    if n >= 1e9:
        return f"{n / 1e9:.2f} B"
    return f"{n / 1e6:.1f} M"


class ModelView(QWidget):
    """Shows the Session's model and project; its buttons start the load and open flows."""

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._session = session

        self.default_button = push_button(f"Load the built-in model ({DEFAULT_MODEL_NAME})",
                                          lambda: self.load("default"), name="primary")
        folder_button = push_button("Open model folder…", self.choose_folder)
        gguf_button = push_button("Open .gguf file…", self.choose_gguf)
        self.builtin_buttons = {
            key: push_button(f"Load {model.name}", lambda _checked=False, key=key: self.load(key),
                             tooltip=model.description)
            for key, model in BUILTIN_MODELS.items() if key != "default"
        }
        self._load_buttons = (self.default_button, *self.builtin_buttons.values(), folder_button, gguf_button)
        self.recent_list = QListWidget()
        self.recent_list.setToolTip("Double-click to load")
        self.recent_list.itemActivated.connect(lambda item: self.load(item.data(Qt.ItemDataRole.UserRole)))

        choose = QGroupBox("Model")
        others = QHBoxLayout()  # a second row: one row of every button is wider than a laptop's half screen
        for button in (*self.builtin_buttons.values(), folder_button, gguf_button):
            others.addWidget(button)
        others.addStretch()
        choose_layout = QVBoxLayout(choose)
        choose_layout.addWidget(self.default_button)
        choose_layout.addLayout(others)
        choose_layout.addWidget(QLabel("Recent models"))
        choose_layout.addWidget(self.recent_list)

        info = QGroupBox("Loaded model")
        self.info_labels: dict[str, QLabel] = {}
        form = QFormLayout(info)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        for key, title in _FIELDS:  # the memory plan is a sentence: cut at its end, not in a word's middle
            label = ElidedLabel("—", mode=Qt.TextElideMode.ElideRight if key == "memory" else Qt.TextElideMode.ElideMiddle)
            self.info_labels[key] = label
            if key == "memory":
                self.memory_details = ""
                self.memory_button = push_button("Details…", self.show_memory_details)
                self.memory_button.setEnabled(False)
                row = QHBoxLayout()
                row.addWidget(label, 1)
                row.addWidget(self.memory_button)
                form.addRow(title, row)
            else:
                form.addRow(title, label)

        project = QGroupBox("Project")
        self.project_label = QLabel()
        self.project_label.setWordWrap(True)
        self.project_folder_label = ElidedLabel()
        self.method_label = QLabel()
        self.method_label.setObjectName("projectMethod")
        self.method_label.setToolTip("The editing method is fixed per project; NAS and ENCORE can be changed per batch "
                                     "in the Queue's Advanced panel")
        self.new_project_dialog: NewProjectDialog | None = None
        self.new_project_button = push_button("New project…", self.choose_new_project)
        self.open_project_button = push_button("Open project…", self.choose_project)
        self.recent_projects = QListWidget()
        self.recent_projects.setToolTip("Double-click to open")
        self.recent_projects.itemActivated.connect(lambda item: self.open_project(item.text()))
        project_buttons = QHBoxLayout()
        project_buttons.addWidget(self.new_project_button)
        project_buttons.addWidget(self.open_project_button)
        project_buttons.addStretch()
        project_layout = QVBoxLayout(project)
        project_layout.addWidget(self.project_label)
        project_layout.addWidget(self.project_folder_label)
        project_layout.addWidget(self.method_label)
        project_layout.addLayout(project_buttons)
        project_layout.addWidget(QLabel("Recent projects"))
        project_layout.addWidget(self.recent_projects)

        right = QVBoxLayout()
        right.addWidget(info)
        right.addWidget(project)
        columns = QHBoxLayout()
        columns.addWidget(choose, 1)
        columns.addLayout(right, 1)
        self.preparation_card = PreparationCard(session)
        layout = QVBoxLayout(self)
        layout.addWidget(self.preparation_card)
        layout.addLayout(columns)

        session.model_changed.connect(self.show_model)
        session.project_changed.connect(self.show_project)
        session.busy_changed.connect(self._busy)
        self.refresh_recent()
        self.show_project(session.project_info)
        self._busy(session.busy)

    # ---- flows -------------------------------------------------------------------------------

    def load(self, source: str) -> None:
        self._session.start(self._session.load_model(source))

    def open_project(self, folder: str) -> None:
        self._session.start(self._session.open_project(folder))

    def choose_folder(self) -> None:
        folder = file_dialogs.choose_folder(self, "Choose a Hugging Face model folder", "model_folder")
        if folder:
            self.load(folder)

    def choose_gguf(self) -> None:
        file = file_dialogs.open_file(self, "Choose a GGUF model file", "gguf_file", "GGUF models (*.gguf)")
        if file:
            self.load(file)

    def choose_new_project(self) -> None:
        """Ask for the folder, method and switches (window-modal, not blocking: tests drive it)."""
        dialog = NewProjectDialog(str(data_dir()), self)
        dialog.accepted.connect(lambda: self._create_project(dialog))
        dialog.finished.connect(dialog.deleteLater)
        self.new_project_dialog = dialog
        dialog.open()

    def _create_project(self, dialog: NewProjectDialog) -> None:
        choice = dialog.choice()
        self._session.start(self._session.open_project(choice.folder, choice.method, choice.settings))

    def choose_project(self) -> None:
        folder = file_dialogs.choose_folder(self, "Open a project folder", "project_folder", data_dir())
        if folder:
            self.open_project(folder)

    # ---- display -----------------------------------------------------------------------------

    def refresh_recent(self) -> None:
        """The recent projects now, and the recent models once the worker has read their list."""
        self.recent_projects.clear()
        self.recent_projects.addItems(recent_projects())
        show_job_result(self._session, jobs.recent_models, self.show_recent_models)

    def show_recent_models(self, models: list[RecentModel]) -> None:
        self.recent_list.clear()
        for entry in models:
            text = f"{entry.name}  ({entry.architecture})"
            if entry.source not in BUILTIN_MODELS:
                text += f"\n{entry.source}"
            item = QListWidgetItem(text)
            item.setData(Qt.ItemDataRole.UserRole, entry.source)
            self.recent_list.addItem(item)

    def show_model(self, info: ModelSummary | None) -> None:
        values = dict.fromkeys(self.info_labels, "—")
        if info:
            values.update(
                name=info.name,
                architecture=f"{info.architecture} ({info.model_type})",
                layers=str(info.layers),
                parameters=_format_params(info.parameters),
                dtype=info.dtype,
                device=info.device,
                projection=f"{info.projection.replace('<i>', 'N')} — d_ff {info.d_ff}, hidden {info.hidden_size}",
                edit_layers="set when a project is opened",
                memory=" · ".join(info.memory_lines[1:] or info.memory_lines) or "—",
            )
        self.memory_details = "\n".join(info.memory_lines) if info else ""
        self.memory_button.setEnabled(bool(self.memory_details))
        for key, label in self.info_labels.items():
            label.setText(values[key])
        self.refresh_recent()
        self._busy(self._session.busy)

    def show_project(self, info: ProjectSummary | None) -> None:
        if info is None:
            self.project_label.setText(
                "No project open. A project folder holds the edit log and the edited weights; "
                "reopening it restores the edited model."
            )
            self.project_folder_label.clear()
            self.method_label.clear()
            return
        self.project_label.setText(f"<b>{escape(info.name)}</b>")
        self.project_folder_label.setText(info.folder)
        self.method_label.setText(f"Method: {method_label(info.method, info.switches)}")
        layers = info.layers
        self.info_labels["edit_layers"].setText(", ".join(str(x) for x in layers) if layers
                                                else "chosen while the model is prepared for editing")
        self.refresh_recent()

    def show_memory_details(self) -> None:
        """The whole memory plan: which device holds what at each phase, and whether it fits."""
        QMessageBox.information(self, "Memory plan", self.memory_details)

    def _busy(self, busy: bool) -> None:
        for button in self._load_buttons:
            button.setEnabled(not busy)
        self.recent_list.setEnabled(not busy)
        has_model = self._session.model_info is not None
        for button in (self.new_project_button, self.open_project_button):
            button.setEnabled(has_model and not busy)
