"""The Queue's Advanced panel: human labels with a tooltip that says what a setting does and why it
has its value, a checkbox for a switch and a spin box for a number (scientific values too), the
method and layers shown but not editable, and only what the user changed handed to the batch."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QCheckBox, QDoubleSpinBox, QFormLayout, QLabel, QLineEdit, QSpinBox

from nse_engine.editing.hparams import (
    PROVENANCE,
    SECTIONS,
    STORED_ORDER,
    NseHyperParams,
    editable_settings,
    setting_scope,
)
from nse_engine.editing.settings import parse_setting
from nse_engine.project_summary import ProjectSummary

from app.conftest import set_setting, wait_idle

from nse_app.session import Session
from nse_app.views.queue_view import QueueView
from nse_app.views.settings_panel import FIELDS, SECTION_TITLES

SETTINGS = NseHyperParams.flat(
    layers=(2, 3, 4), method="nse", alpha=53.93, upper_bound=539.28, v_lr=1.513, v_num_grad_steps=20,
    mom2_update_weight=15000.0, neuron_threshold=0.8, nullspace_threshold=0.001, refresh_drifted=True, encore=False,
    verify_passes=3, context_prefixes=2, source="derived",
    notes={"alpha_upper_bound": "0.5 and 5 × median ‖z − h‖ 107.86 of 12 probe edits",
           "refresh_drifted": "on: earlier edits that later rounds moved away are pulled back"},
)
PROJECT = ProjectSummary("/data/capitals", "capitals", "default", "nse", SETTINGS)


@pytest.fixture
def session(qtbot, loop):
    s = Session()
    yield s
    s.shutdown()


@pytest.fixture
def queue(qtbot, session):
    view = QueueView(session)
    qtbot.addWidget(view)
    session.project_changed.emit(PROJECT)
    view.advanced.setChecked(True)
    yield view
    wait_idle(qtbot, session)


def _label(view: QueueView, key: str) -> QLabel:
    form = view.settings_panel.layout()
    assert isinstance(form, QFormLayout)
    return form.labelForField(view.settings_panel.editors[key])


def test_a_switch_is_a_checkbox_and_a_number_a_spin_box_each_with_a_human_label_and_tooltip(queue):
    assert not [e for e in queue.findChildren(QLineEdit) if e.objectName().startswith("setting_")]  # no text boxes
    drifted = queue.findChild(QCheckBox, "setting_refresh_drifted")
    assert drifted.isChecked()
    assert _label(queue, "refresh_drifted").text() == "Pull back drifted edits"
    assert "earlier facts" in drifted.toolTip() and "pulled back" in drifted.toolTip()  # what it does, and why on
    passes = queue.findChild(QSpinBox, "setting_verify_passes")
    assert passes.value() == 3
    alpha = queue.findChild(QDoubleSpinBox, "setting_alpha")
    assert alpha.value() == 53.93 and alpha.text() == "53.93"
    assert "Derived for this model: 53.93 — 0.5 and 5 × median" in alpha.toolTip()
    assert "not measured on this model" in queue.findChild(QCheckBox, "setting_encore").toolTip()
    small = queue.findChild(QDoubleSpinBox, "setting_nullspace_threshold")
    assert small.text() == "0.001"
    small.stepBy(1)  # the arrows step by a tenth of the value's order
    assert small.text() == "0.0011"
    small.lineEdit().setText("1e-5")  # scientific notation, as a user types it
    small.interpretText()
    assert small.value() == 1e-5 and small.text() == "1e-05"
    alpha.stepBy(-1)
    assert alpha.text() == "52.93"


def test_overrides_hold_only_what_the_user_changed_in_the_form_the_engine_parses(queue):
    assert queue.overrides() == {}
    queue.findChild(QCheckBox, "setting_refresh_drifted").setChecked(False)
    queue.findChild(QSpinBox, "setting_verify_passes").setValue(5)
    queue.findChild(QDoubleSpinBox, "setting_nullspace_threshold").setValue(2.5e-4)
    changed = queue.overrides()
    assert changed == {"refresh_drifted": "false", "verify_passes": "5", "nullspace_threshold": "0.00025"}
    assert {k: parse_setting(k, v) for k, v in changed.items()} == {
        "refresh_drifted": False, "verify_passes": 5, "nullspace_threshold": 2.5e-4}
    queue.findChild(QSpinBox, "setting_verify_passes").setValue(3)  # back to the project's value: no change
    assert "verify_passes" not in queue.overrides()
    queue.advanced.setChecked(False)
    assert queue.overrides() == {}  # a folded panel changes nothing
    queue.advanced.setChecked(True)
    queue._reset_settings()
    assert queue.overrides() == {}


def test_the_method_and_layers_are_shown_but_not_editable(queue):
    for key, shown in (("layers", "2–4"), ("method", "NSE"), ("context_prefixes", "2")):
        editor = queue.settings_panel.editors[key]
        assert type(editor) is QLabel and editor.text() == shown, key
        assert "Fixed for the project" in editor.toolTip()
    assert queue.method.text() == "NSE" and isinstance(queue.method, QLabel)  # one choice: a label


def test_only_what_a_batch_may_change_is_editable_and_an_old_projects_setting_is_not(qtbot, session, queue):
    settings = NseHyperParams.flat(layers=(2, 3), v_lr=0.5, v_num_grad_steps=5, alpha=1.0, upper_bound=10.0,
                                   mom2_update_weight=1.0, neuron_threshold=1.0, method="memit").to_dict()
    settings["v_loss_layer"] = 3  # recorded by an earlier version; the batch would refuse it as unknown
    queue.settings_panel.show_settings(settings)
    editors = queue.settings_panel.editors
    editable = {k for k, e in editors.items() if type(e) is not QLabel}
    assert editable == set(editable_settings())
    assert "method" not in editable and "layers" not in editable
    assert editors["method"].text() == "MEMIT" and editors["layers"].text() == "2, 3"
    assert type(editors["v_loss_layer"]) is QLabel and "Not a setting of this version" in editors["v_loss_layer"].toolTip()
    assert "source" not in editors and "notes" not in editors
    assert set(queue.overrides()) == set()


def test_the_test_helper_sets_the_typed_editors(queue):
    set_setting(queue, "alpha", "20")
    set_setting(queue, "refresh_drifted", "false")
    assert queue.overrides() == {"alpha": "20", "refresh_drifted": "false"}


def test_every_engine_setting_has_a_label_and_an_explanation():
    names = {name for name in STORED_ORDER if setting_scope(name) != PROVENANCE}
    assert names == set(FIELDS)
    assert set(SECTION_TITLES) == {None, *SECTIONS}  # a heading for each section of the engine's settings


def test_settings_are_grouped_under_their_sections_and_editors_stop_where_the_engine_refuses(session, queue):
    form = queue.settings_panel.layout()
    rows = [form.itemAt(row, QFormLayout.ItemRole.SpanningRole) or form.itemAt(row, QFormLayout.ItemRole.FieldRole)
            for row in range(form.rowCount())]
    shown = [row.widget() for row in rows]
    headings = [w.text() for w in shown if w.objectName() == "settings_section"]
    assert headings == ["<b>Project</b>", "<b>Target states</b>", "<b>Layer solve</b>", "<b>Editing passes</b>",
                        "<b>NAS and ENCORE</b>", "<b>Prepared once</b>"]
    at = {w.objectName(): i for i, w in enumerate(shown)}
    assert at["setting_layers"] < at["setting_v_lr"] < at["setting_nullspace_threshold"] < at["setting_alpha"]
    passes = queue.findChild(QSpinBox, "setting_verify_passes")
    assert passes.minimum() == 0  # Range(0) on the engine's field
    session.project_changed.emit(ProjectSummary("/data/x", "x", "default", "nse", NseHyperParams.flat(
        layers=(2, 3), v_lr=0.5, v_num_grad_steps=5, alpha=1.0, upper_bound=10.0, mom2_update_weight=1.0,
        neuron_threshold=0.8)))
    assert queue.findChild(QSpinBox, "setting_max_iterations").minimum() == 1
    share = queue.findChild(QDoubleSpinBox, "setting_neuron_threshold")
    assert (share.minimum(), share.maximum()) == (0.0, 1.0)
