"""The Model screen offers every built-in model and shows the memory plan of the loaded one."""

from __future__ import annotations

from app.conftest import error_dialogs, load


def test_gemma_is_offered_beside_the_default(window):
    buttons = window.model_view.builtin_buttons
    assert list(buttons) == ["gemma3-270m"]
    assert buttons["gemma3-270m"].text() == "Load gemma-3-270m"
    assert "Gemma 3" in buttons["gemma3-270m"].toolTip()


def test_loaded_model_shows_its_memory_plan(qtbot, window, tiny_model_dir):
    load(qtbot, window, str(tiny_model_dir))
    short = window.model_view.info_labels["memory"].text()
    assert short.startswith("cpu: peak") and "fits" in short
    plan = window.model_view.memory_details
    assert "C and Kp on cpu in float64" in plan
    assert "cpu: peak" in plan and "fits" in plan
    assert not error_dialogs()
