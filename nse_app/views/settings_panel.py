"""The Queue's Advanced panel: the project's NSE settings, each with a human label, a tooltip
(what it does, this project's value and how it was derived) and an editor of its type, a
checkbox for a switch and a spin box for a number, so that nothing is typed as "True".

Which settings a batch may change, and which numbers each takes, is the engine's to say (the
metadata on NseHyperParams' fields): the method and the edited layers, fixed for the project, and
what the project prepared once are shown read-only; where the settings came from is not shown.
The rows are grouped under NseHyperParams' sections (target states, solve, passes, switches).
`overrides()` hands over only what the user changed, written as `nse edit --set` takes it; the
engine's settings parser checks the values together before anything is edited."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from PySide6.QtCore import Signal
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QSpinBox,
    QWidget,
)

from nse_engine.editing.hparams import PREPARED, PROVENANCE, ROUND, setting_range, setting_scope, setting_section
from nse_engine.method_names import METHOD_NAMES

# The settings the λ/β schedule depends on.
SCHEDULE_SETTINGS = ("schedule_ramp_edits", "schedule_start", "mom2_update_weight", "earlier_edits_weight")
_FIXED_WHY = "Fixed for the project: the round refuses another value. Start a new project to change it."
_PREPARED_WHY = "Fixed for the project: it is used once, when the project prepares editing, and not per batch."
_UNKNOWN_WHY = "Not a setting of this version: it is kept as the project recorded it."
_LARGEST = 1e15
_INT_LARGEST = 1_000_000
# A heading per section of NseHyperParams (None: the project's own, layers and method), in the
# order shown; a setting this version does not know (an old project's) goes last.
SECTION_TITLES = {None: "Project", "target": "Target states", "solve": "Layer solve", "passes": "Editing passes",
                  "switches": "NAS and ENCORE", "preparation": "Prepared once"}
_OLD_TITLE = "Recorded by an earlier version"


@dataclass(frozen=True)
class Field:
    """How the panel shows one setting."""

    label: str
    what: str  # what the setting does, for the tooltip
    kind: str  # "bool", "int", "float" or "text" (editable only where the engine's scope says so)


FIELDS: dict[str, Field] = {
    "method": Field("Editing method", "NSE, MEMIT_seq or AlphaEdit, chosen when the project was created.", "text"),
    "layers": Field("Edited layers", "The blocks whose MLP output projections are edited.", "text"),
    "v_lr": Field("Target-state learning rate", "Adam learning rate of each fact's target-state delta: "
                  "higher reaches a target state in fewer steps.", "float"),
    "v_num_grad_steps": Field("Target-state steps", "Adam steps at most per target state.", "int"),
    "alpha": Field("Close enough (alpha)", "A fact within this distance of its target state needs no further pass.",
                   "float"),
    "upper_bound": Field("Outlier distance", "A fact farther than this from its target state is not edited "
                         "(it must stay above alpha).", "float"),
    "mom2_update_weight": Field("Keep general text (λ)", "Weight of the general-text key covariance C in the "
                                "solve: higher keeps other knowledge in place, lower lets edits in more easily.",
                                "float"),
    "earlier_edits_weight": Field("Keep earlier edits (β)", "Weight of the earlier edits' keys in the solve "
                                  "(the paper uses 1): higher holds earlier facts in place.", "float"),
    "neuron_threshold": Field("Neuron share", "Share of the summed |key| covered by the neurons a round updates "
                              "(1.0 updates every neuron; above 0).", "float"),
    "layer_share_ratio": Field("Layer share ratio", "Each edited layer takes this × the residual share of the "
                               "one below (1 = even shares; above 0).", "float"),
    "clamp_norm_factor": Field("Target-state size limit", "A target state moves the hidden state by at most this "
                               "× its norm.", "float"),
    "v_weight_decay": Field("Target-state weight decay", "Weight decay of the target-state delta.", "float"),
    "target_stop_nll": Field("Target-state stop (NLL)", "A target state stops once its new object's mean "
                             "negative log-likelihood is below this; 0 never stops early.", "float"),
    "target_stop_top1": Field("Stop when most probable", "Also stop a target state once every token of the new "
                              "object is the most probable one on every prompt (ENCORE's rule).", "bool"),
    "target_stop_margin": Field("Most-probable margin (nats)", "With 'Stop when most probable': ahead of the "
                                "runner-up by at least this much (0: just most probable).", "float"),
    "kl_factor": Field("Keep subject meaning (KL)", "Keeps the '{subject} is a' predictions close to the "
                       "original model's.", "float"),
    "subject_repeat_weight": Field("Repeated-subject weight", "Weight of a repeated-subject row, so a reply that "
                                   "names the subject again spells it (0: off).", "float"),
    "chat_rows": Field("Chat rows", "Chat models: target states and keys also come from the fact asked as a "
                       "chat turn.", "bool"),
    "chat_subject_weight": Field("Chat subject weight", "With chat rows: keeps the subject the chat reply "
                                 "writes spelled right (0: off).", "float"),
    "max_iterations": Field("Editing passes", "Editing passes per batch.", "int"),
    "refresh_drifted": Field("Pull back drifted edits", "Also re-edit earlier facts that later batches moved "
                             "beyond alpha (NSE and MEMIT_seq only).", "bool"),
    "verify_passes": Field("Extra passes for unwritten facts", "Each batch checks what the model writes; up to "
                           "this many more passes for new facts it does not write yet (0: check only).",
                           "int"),
    "chat_passes": Field("Extra passes for chat replies", "The extra passes also go to facts whose chat reply "
                         "does not say the new object (chat answers +0.07, subjects spelled −0.16 at 100 × 10).",
                         "bool"),
    "schedule_ramp_edits": Field("λ/β ramp (edits)", "λ and β grow with the edits made so far, reaching their "
                                 "values after this many (0: constant).", "int"),
    "schedule_start": Field("λ/β ramp start", "The share of λ (and of β − 1) the ramp starts with (above 0, "
                            "at most 1).", "float"),
    "context_prefixes": Field("Context prefixes", "Generated text prefixes put in front of each prompt (plus "
                              "the bare prompt).", "int"),
    "context_prefix_tokens": Field("Context prefix length", "Tokens in each generated prefix.", "int"),
    "stats_tokens": Field("Statistics tokens", "Token positions the key statistics are computed on (0: the "
                          "statistics module's default).", "int"),
    "stats_precision": Field("Statistics precision", "The key statistics' matrix products: bfloat16 where this "
                             "computer multiplies it at least three times as fast as float32 (C within 0.6 %).", "text"),
    "nullspace_threshold": Field("Null-space threshold (AlphaEdit)", "AlphaEdit: directions of C with an "
                                 "eigenvalue below this are free to change (above 0).", "float"),
    "update_norm_weight": Field("Update size weight (L2)", "Weight of ‖ΔW‖² in the solve (AlphaEdit's L2; 0 "
                                "for NSE and MEMIT_seq).", "float"),
    "norm_anchoring": Field("NAS: norm anchoring", "Rescale each target value to the norm anchor; a fact beyond "
                            "twice it is skipped.", "bool"),
    "norm_anchor": Field("NAS norm anchor", "The norm NAS rescales target values to (measured on the original "
                         "model).", "float"),
    "encore": Field("ENCORE", "Also stop a target state once the new object is top-1 on every prompt, and add "
                    "the ENCORE norm weight to the update size weight.", "bool"),
    "encore_norm_weight": Field("ENCORE norm weight", "Added to the update size weight while ENCORE is on.",
                                "float"),
}


def format_number(value: float) -> str:
    """A number in its shortest faithful form: 0.001, 13270.3, 1e-05, 20."""
    return f"{value:.12g}"


def setting_text(value: Any) -> str:
    """A setting's value as `nse edit --set` takes it (booleans true/false, layers 2, 3, 4)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format_number(value)
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


def _read_only_text(key: str, value: Any) -> str:
    """A fixed setting as the panel's narrow value column shows it: consecutive edited layers as
    a range, 2–8, where a wrapped list pushed a block out of sight."""
    if key == "method":
        return METHOD_NAMES.get(str(value), str(value))
    if key == "layers" and isinstance(value, (list, tuple)) and len(value) > 2 \
            and list(value) == list(range(value[0], value[-1] + 1)):
        return f"{value[0]}–{value[-1]}"
    return setting_text(value)


def _field(key: str, value: Any) -> Field:
    """The field of `key`; a setting this table does not know yet is shown by its value's type."""
    if key in FIELDS:
        return FIELDS[key]
    kind = {bool: "bool", int: "int", float: "float"}.get(type(value), "text")
    return Field(key.replace("_", " "), "An NSE setting.", kind)


def tooltip(key: str, value: Any, settings: Mapping[str, Any]) -> str:
    """What the setting does, this project's value, and why it has that value."""
    field = _field(key, value)
    notes = settings.get("notes") or {}
    note = notes.get(key) or (notes.get("alpha_upper_bound") if key in ("alpha", "upper_bound") else None)
    source = str(settings.get("source", ""))
    shown = setting_text(value)
    if note:
        origin = f"Derived for this model: {shown} — {note}."
    elif source.startswith("preset:"):
        origin = f"This project's value: {shown}, the paper's preset for {source.removeprefix('preset:')}."
    else:
        origin = f"This project's value: {shown} (a fixed default, not measured on this model)."
    text = f"{field.what}\n\n{origin}"
    why = _fixed_why(key)
    return f"{text}\n\n{why}" if why else text


def _scope(key: str) -> str | None:
    """The engine's scope of `key` (None for a name this version does not know, e.g. an old project's)."""
    try:
        return setting_scope(key)
    except KeyError:
        return None


def _bounds(key: str, largest: float) -> tuple[float, float]:
    """The editor's range: the engine's for this setting (its field's Range), never below 0 (no
    setting takes a negative number) nor above `largest`."""
    values = setting_range(key)
    if values is None:
        return 0.0, largest
    return max(0.0, values.low), min(values.high, largest)


def _section_title(key: str) -> str:
    """The heading `key` is shown under: its NseHyperParams section's."""
    try:
        return SECTION_TITLES[setting_section(key)]
    except KeyError:
        return _OLD_TITLE


def _fixed_why(key: str) -> str | None:
    """Why a batch cannot change `key`, or None where it can."""
    scope = _scope(key)
    if scope == ROUND:
        return None
    return {PREPARED: _PREPARED_WHY, None: _UNKNOWN_WHY}.get(scope, _FIXED_WHY)


class NumberBox(QDoubleSpinBox):
    """A spin box for a setting whose values span orders of magnitude (1e-05 to 13270.3): shows the
    shortest faithful form, takes scientific notation, and steps by a tenth of the value's order."""

    def __init__(self, minimum: float, maximum: float, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setDecimals(323)  # Qt rounds a value to `decimals` places: this many keep every double
        self.setRange(minimum, maximum)
        self.setKeyboardTracking(False)

    def stepBy(self, steps: int) -> None:  # noqa: N802 (Qt override)
        """Step by a tenth of the value's order (13270.3 → 14270.3, 0.05 → 0.051; from 0 by 0.1)."""
        value = self.value()
        step = 10.0 ** (math.floor(math.log10(abs(value))) - 1) if value else 0.1
        self.setValue(float(format_number(value + steps * step)))

    def textFromValue(self, value: float) -> str:  # noqa: N802 (Qt override)
        return format_number(value)

    def valueFromText(self, text: str) -> float:  # noqa: N802 (Qt override)
        try:
            return float(text.strip())
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int) -> object:
        """Acceptable: a number in range; Intermediate: on the way to one ("1e", "-", "")."""
        stripped = text.strip()
        try:
            number = float(stripped)
        except ValueError:
            partial = all(c in "0123456789.eE+-" for c in stripped)
            return (QValidator.State.Intermediate if partial else QValidator.State.Invalid), text, pos
        if math.isnan(number) or math.isinf(number) or not self.minimum() <= number <= self.maximum():
            return QValidator.State.Intermediate, text, pos
        return QValidator.State.Acceptable, text, pos


class AdvancedSettings(QWidget):
    """The form of the project's settings; it keeps the project's values to tell what changed."""

    schedule_inputs_changed = Signal()  # a setting the λ/β schedule depends on was changed

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._form = QFormLayout(self)
        self._defaults: dict[str, Any] = {}
        self.editors: dict[str, QWidget] = {}  # setting → its checkbox, spin box, or read-only label

    def show_settings(self, settings: Mapping[str, Any]) -> None:
        """Build one row per setting of the project (none for where the settings came from), under
        a heading per section."""
        while self._form.rowCount():
            self._form.removeRow(0)
        self._defaults = {k: v for k, v in settings.items() if _scope(k) != PROVENANCE}
        self.editors = {}
        sections: dict[str, list[str]] = {title: [] for title in [*SECTION_TITLES.values(), _OLD_TITLE]}
        for key in self._defaults:
            sections[_section_title(key)].append(key)
        for title, keys in sections.items():
            if keys:
                self._add_section(title, keys, settings)

    def _add_section(self, title: str, keys: list[str], settings: Mapping[str, Any]) -> None:
        heading = QLabel(f"<b>{title}</b>")
        heading.setObjectName("settings_section")
        self._form.addRow(heading)
        for key in keys:
            value = self._defaults[key]
            field = _field(key, value)
            editor = self._editor(key, field, value)
            editor.setObjectName(f"setting_{key}")
            tip = tooltip(key, value, settings)
            editor.setToolTip(tip)
            label = QLabel(field.label)
            label.setToolTip(tip)
            label.setBuddy(editor)
            self.editors[key] = editor
            self._form.addRow(label, editor)

    def _editor(self, key: str, field: Field, value: Any) -> QWidget:
        """A checkbox or spin box for a setting a batch may change; a read-only label for the others."""
        notify = self.schedule_inputs_changed.emit if key in SCHEDULE_SETTINGS else None
        editable = _fixed_why(key) is None
        if editable and field.kind == "bool" and isinstance(value, bool):
            box = QCheckBox()
            box.setChecked(value)
            if notify:
                box.toggled.connect(notify)
            return box
        if editable and field.kind == "int" and isinstance(value, int) and not isinstance(value, bool):
            low, high = _bounds(key, _INT_LARGEST)
            spin = QSpinBox(minimum=int(low), maximum=int(high))
            spin.setValue(value)
        elif editable and field.kind in ("int", "float") and isinstance(value, (int, float)) and not isinstance(value, bool):
            low, high = _bounds(key, _LARGEST)
            spin = NumberBox(low, max(high, float(value)))
            spin.setValue(float(value))
        else:
            label = QLabel(_read_only_text(key, value))
            label.setWordWrap(True)
            return label
        spin.setKeyboardTracking(False)  # a typed value counts once it is entered, not per keystroke
        if notify:
            spin.valueChanged.connect(lambda _value: notify())
        return spin

    def reset(self) -> None:
        """Every editor back to the project's value."""
        for key, editor in self.editors.items():
            value = self._defaults[key]
            if isinstance(editor, QCheckBox):
                editor.setChecked(bool(value))
            elif isinstance(editor, (QSpinBox, QDoubleSpinBox)):
                editor.setValue(value)

    def value(self, key: str) -> Any:
        """The value the editor of `key` shows now (the project's value for a read-only one)."""
        editor = self.editors[key]
        if isinstance(editor, QCheckBox):
            return editor.isChecked()
        if isinstance(editor, (QSpinBox, QDoubleSpinBox)):
            return editor.value()
        return self._defaults[key]

    def overrides(self) -> dict[str, str]:
        """The settings changed from the project's values, written as `nse edit --set` takes them."""
        changed = {}
        for key in self.editors:
            text = setting_text(self.value(key))
            if text != setting_text(self._defaults[key]):
                changed[key] = text
        return changed
