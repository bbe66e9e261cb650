"""The New project dialog: a folder, the editing method and the NAS / ENCORE switches.

The method is fixed for the life of a project (the engine refuses another one later), so it is
chosen here, once; the switches can still be changed per batch in the Queue's Advanced panel.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from nse_engine.method_names import METHOD_NAMES, METHODS, SWITCH_NAMES
from nse_engine.paths import holds_project

from nse_app.views import file_dialogs
from nse_app.views.wiring import push_button

METHOD_HELP = {
    "nse": "updates only the neurons that carry each fact, keeping earlier edits in place (recommended)",
    "memit": "MEMIT_seq: every neuron of the edited layers, one pass per batch (a baseline)",
    "alphaedit": "MEMIT's update projected away from what general text uses, so unrelated text changes less",
}
SWITCH_HELP = {
    "norm_anchoring": "rescales each target value to the model's usual norm; skips edits far beyond it",
    "encore": "stops optimising a target once the new object is top-1, and penalises large updates",
}


@dataclass(frozen=True)
class NewProject:
    """What the dialog asks the engine to create."""

    folder: str
    method: str | None  # None: the folder holds a project already, which keeps its own
    settings: dict[str, bool] | None  # the switches, by setting name (None: the project's own)


class NewProjectDialog(QDialog):
    """Asks for a new or empty folder, the method (NSE by default) and the switches (off by default)."""

    def __init__(self, start_folder: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("New project")
        self.setObjectName("newProjectDialog")
        self.folder = QLineEdit()
        self.folder.setPlaceholderText("an empty folder for the project's log and edited weights")
        self.folder.textChanged.connect(self._check)
        self.folder_note = QLabel()
        self.folder_note.setObjectName("folderNote")
        self.folder_note.setWordWrap(True)
        self._start_folder = start_folder
        browse = push_button("Browse…", self._browse)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder, 1)
        folder_row.addWidget(browse)

        self.methods = methods = QGroupBox("Editing method (fixed for the project)")
        methods_layout = QVBoxLayout(methods)
        self._methods = QButtonGroup(self)
        self.method_buttons: dict[str, QRadioButton] = {}
        for key in METHODS:
            button = QRadioButton(METHOD_NAMES[key])
            button.setObjectName(f"method_{key}")
            self._methods.addButton(button)
            self.method_buttons[key] = button
            methods_layout.addWidget(button)
            methods_layout.addWidget(_explanation(METHOD_HELP[key]))
        self.method_buttons["nse"].setChecked(True)

        self.switches = switches = QGroupBox("Additions usable with any method")
        switches_layout = QVBoxLayout(switches)
        self.switch_boxes: dict[str, QCheckBox] = {}
        for key, name in SWITCH_NAMES.items():
            box = QCheckBox(name)
            box.setObjectName(f"switch_{key}")
            self.switch_boxes[key] = box
            switches_layout.addWidget(box)
            switches_layout.addWidget(_explanation(SWITCH_HELP[key]))

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Create project")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Folder"))
        layout.addLayout(folder_row)
        layout.addWidget(self.folder_note)
        layout.addWidget(methods)
        layout.addWidget(switches)
        layout.addWidget(self.buttons)
        self._check()

    def choice(self) -> NewProject:
        """The folder with the method and switches chosen, or with none when it holds a project already."""
        folder = self.folder.text().strip()
        if _is_project(folder):
            return NewProject(folder, None, None)
        method = next(key for key, button in self.method_buttons.items() if button.isChecked())
        settings = {key: box.isChecked() for key, box in self.switch_boxes.items()}
        return NewProject(folder, method, settings)

    def _browse(self) -> None:
        folder = file_dialogs.choose_folder(self, "Choose an empty folder for the new project", "new_project_folder",
                                            self._start_folder)
        if folder:
            self.folder.setText(folder)

    def _check(self) -> None:
        """Create only in a new or empty folder; a project folder is opened as it is; anything else is refused."""
        text = self.folder.text().strip()
        problem, note = _folder_problem(text), ""
        if problem is None and _is_project(text):
            note = ("This folder holds a project already: it will be opened with its own method and switches "
                    "(the choices below are not used).")
        self.folder_note.setText(problem or note)
        self.folder_note.setStyleSheet("color: #b3261e;" if problem else "")
        self.methods.setEnabled(not note)
        self.switches.setEnabled(not note)
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setEnabled(bool(text) and problem is None)
        ok.setText("Open project" if note else "Create project")


def _is_project(folder: str) -> bool:
    return bool(folder) and holds_project(Path(folder))


def _folder_problem(folder: str) -> str | None:
    """Why no project can be created or opened in `folder` (None: it can, or nothing is typed yet)."""
    if not folder:
        return None
    path = Path(folder)
    if not path.exists():
        return None if path.parent.is_dir() else f"{path.parent} does not exist: choose a folder whose parent does."
    if not path.is_dir():
        return f"{path} is a file: choose a new or empty folder."
    try:
        empty = _is_project(folder) or not any(path.iterdir())
    except OSError as error:
        return f"{path} cannot be read ({error.strerror}): choose another folder."
    return None if empty else f"{path} is not empty and holds no project: choose a new or empty folder."


def _explanation(text: str) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setIndent(22)
    label.setStyleSheet("color: #666666;")
    return label
