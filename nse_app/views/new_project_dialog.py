"""The New project dialog: a folder, the editing method and the NAS / ENCORE switches.

The method is fixed for the life of a project (the engine refuses another one later), so it is
chosen here, once; the switches can still be changed per batch in the Queue's Advanced panel.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from nse_engine.method_names import METHOD_NAMES, METHODS, SWITCH_NAMES

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
    method: str
    settings: dict[str, bool]  # the switches, by setting name


class NewProjectDialog(QDialog):
    """Asks for an empty folder, the method (NSE by default) and the switches (off by default)."""

    def __init__(self, start_folder: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("New project")
        self.setObjectName("newProjectDialog")
        self.folder = QLineEdit()
        self.folder.setPlaceholderText("an empty folder for the project's log and edited weights")
        self.folder.textChanged.connect(self._check)
        self._start_folder = start_folder
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder, 1)
        folder_row.addWidget(browse)

        methods = QGroupBox("Editing method (fixed for the project)")
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

        switches = QGroupBox("Additions usable with any method")
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
        layout.addWidget(methods)
        layout.addWidget(switches)
        layout.addWidget(self.buttons)
        self._check()

    def choice(self) -> NewProject:
        method = next(key for key, button in self.method_buttons.items() if button.isChecked())
        settings = {key: box.isChecked() for key, box in self.switch_boxes.items()}
        return NewProject(self.folder.text().strip(), method, settings)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose an empty folder for the new project", self._start_folder)
        if folder:
            self.folder.setText(folder)

    def _check(self) -> None:
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(bool(self.folder.text().strip()))


def _explanation(text: str) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setIndent(22)
    label.setStyleSheet("color: #666666;")
    return label
