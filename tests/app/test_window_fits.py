"""The main window fits a 1024 px wide screen whatever it shows: no label, path, model name or
status text sets its minimum width (a 1,868 px minimum once pushed Add to queue and Cancel off a
1600 px screen)."""

from __future__ import annotations

from nse_engine.model.summary import ModelSummary
from nse_engine.progress import Progress
from nse_engine.project_summary import ProjectSummary

from app.conftest import load

NARROWEST = 1024  # px: the narrowest screen we support
LOWEST = 700  # px: a 768 px laptop screen less the desktop's panels

LONG_PLAN = (
    "editing layers 1–2, 10 facts per round, weights in float32; " + "C and Kp on cpu in float64, " * 8,
    "cpu: peak 1.2 of 23.0 GiB, fits (" + ", ".join(f"phase{i} 0.1" for i in range(20)) + " GiB)",
)


def _widest_screen(window) -> tuple[int, str]:
    widths = []
    for i in range(window.tabs.count()):
        window.tabs.setCurrentIndex(i)
        hint = window.minimumSizeHint()
        assert hint.height() <= LOWEST, f"the {window.tabs.tabText(i)} screen needs {hint.height()} px of height"
        widths.append((hint.width(), window.tabs.tabText(i)))
    return max(widths)


def test_every_screen_fits_1024_px_with_a_model_loaded(qtbot, window, tiny_model_dir):
    load(qtbot, window, str(tiny_model_dir))
    width, screen = _widest_screen(window)
    assert width <= NARROWEST, f"the {screen} screen needs {width} px"


def test_long_values_do_not_widen_the_window(qtbot, window):
    summary = ModelSummary("M" * 300, "/models/" + "x" * 300, "LlamaForCausalLM", "llama", 30, 134_515_008,
                           "float32", "cpu", "model.layers.<i>.mlp.down_proj", 1536, 576, LONG_PLAN)
    window.model_view.show_model(summary)
    window.model_view.show_project(ProjectSummary("/data/" + "p" * 300, "p" * 300, "default", "nse"))
    window.edit_form.subject.setText("S" * 200)
    window.session.progress.emit(Progress("target states", 40, 100, "round 2 of 5 · " + "fact " * 80, elapsed_s=75.0))
    window.status_label.setText("status " * 100)
    width, screen = _widest_screen(window)
    assert width <= NARROWEST, f"the {screen} screen needs {width} px"
    assert window.model_view.info_labels["name"].text() == "M" * 300  # the whole value is kept, only shown cut
    assert window.model_view.info_labels["name"].toolTip() == "M" * 300
