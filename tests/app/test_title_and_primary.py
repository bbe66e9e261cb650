"""The window title names the project and the model once each, and the primary button style marks
the next step: load a model, then create a project, then run the queued edits."""

from __future__ import annotations

import pytest

from nse_engine.facts import EditRequest
from nse_engine.model.summary import ModelSummary
from nse_engine.project_summary import ProjectSummary

from app.conftest import wait_idle

from nse_app.main_window import MainWindow
from nse_app.session import Session

MODEL = ModelSummary("tiny-gpt2", "/m", "GPT2LMHeadModel", "gpt2", 4, 1, "float32", "cpu", "h", 8, 4, ())


def _project(name: str) -> ProjectSummary:
    return ProjectSummary(f"/data/{name}", name, "default", "nse", chosen={"layers": [1]}, prepared=False)


@pytest.fixture
def main(qtbot, loop):
    session = Session()
    window = MainWindow(session)
    qtbot.addWidget(window)
    yield window
    wait_idle(qtbot, session)
    window.close()


def _show(window: MainWindow, model: ModelSummary | None, project: ProjectSummary | None) -> None:
    session = window.session
    session.model_info, session.project_info = model, project
    session.model_changed.emit(model)
    session.project_changed.emit(project)


@pytest.mark.parametrize(("project", "title"), [
    ("tiny-gpt2", "NSE Studio — tiny-gpt2"),
    ("Tiny-GPT2-capitals", "NSE Studio — Tiny-GPT2-capitals"),
    ("capitals", "NSE Studio — capitals — tiny-gpt2"),
])
def test_the_title_names_project_and_model_once_each(main, project, title):
    _show(main, MODEL, _project(project))
    assert main.windowTitle() == title
    assert main.windowTitle().casefold().count("tiny-gpt2") <= 1


def _primary(window: MainWindow) -> list[str]:
    buttons = (window.model_view.default_button, window.model_view.new_project_button, window.queue_view.run_button)
    return [b.text() for b in buttons if b.objectName() == "primary"]


def test_the_primary_style_moves_to_the_next_step(qtbot, main):
    assert _primary(main) == [main.model_view.default_button.text()]  # nothing loaded: load the built-in model
    _show(main, MODEL, None)
    assert _primary(main) == ["New project…"]
    _show(main, MODEL, _project("capitals"))
    wait_idle(qtbot, main.session)
    assert _primary(main) == []  # an empty queue: nothing to run yet
    main.queue_view.show_facts([EditRequest("Danielle Darrieux", "The mother tongue of {} is", "English",
                                            "French", fact_id=1)])
    assert _primary(main) == ["Run queued edits"]
    main.queue_view.show_facts([])
    assert _primary(main) == []
    _show(main, None, None)
    assert _primary(main) == [main.model_view.default_button.text()]
