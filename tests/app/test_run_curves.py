"""The Retention screen loads the curves of a lifelong benchmark (`nse bench --checkpoint-every N`)
and draws them beside the open project's, to compare; a file without curves is one error dialog."""

from __future__ import annotations

import json

import pytest

from nse_engine.store.log_rows import RetentionRow

from nse_app.session import Session
from nse_app.views.retention_view import RetentionView

from app.conftest import error_dialogs


@pytest.fixture
def session(qtbot, loop):
    s = Session()
    yield s
    s.shutdown()


def _point(edits: int, retention: float, efficacy: float, fluency: float) -> dict:
    """A checkpoint as `nse bench` writes it (the figures the screen draws, and some it does not)."""
    return {"cases_done": edits, "edits_applied": edits, "round": edits // 100, "first_facts": 1000,
            "retention_first": retention, "generation_first": 0.5, "efficacy_last": efficacy,
            "generation_last": 0.6, "specificity": 0.7, "specificity_unedited_neighbours": 0.72,
            "chat_answer": 0.2, "subject_spelling": 0.9, "subject_spelled_before": 150, "fluency": fluency,
            "seconds_per_edit": 3.1, "peak_rss_mb": 4000.0, "peak_cuda_mb": None, "state_mb": 12.0, "log_mb": 0.4}


@pytest.fixture
def run_file(tmp_path):
    path = tmp_path / "lifelong_10k.json"
    path.write_text(json.dumps({
        "status": "running", "model": "SmolLM2-360M", "method": "nse", "cases": 10000, "batch_size": 100,
        "checkpoints": {"every": 1000, "first": 1000, "last": 1000, "neighbours": 200, "chat": 200, "seed": 0,
                        "samples": {"first": list(range(1000)), "neighbours": [3, 9], "chat": [1, 2]},
                        "unedited": {"retention_first": 0.05, "chat_answer": 0.0, "specificity": 0.8, "fluency": 5.1},
                        "points": [_point(1000, 0.97, 0.9, 4.9), _point(2000, 0.91, 0.88, 4.8)]},
        "provenance": {"commit": "abc", "command": "nse bench …", "date": "2026-12-07T18:00:00+00:00"},
    }))
    return path


def _legend(plot) -> list[str]:
    return [label.text for _sample, label in plot.legend.items]


def test_a_runs_curves_are_drawn_beside_the_projects_own_and_cleared(qtbot, session, run_file):
    view = RetentionView(session)
    qtbot.addWidget(view)
    view.show_series([RetentionRow(1, 10, 0, 0, None, 1.0, None, None, None, says_new=1.0)])

    assert view.load_run(str(run_file))
    assert not error_dialogs()
    assert view.run_curves.drawn("retention_first") == ([0.0, 1000.0, 2000.0], [0.05, 0.97, 0.91])
    assert view.run_curves.drawn("efficacy_last") == ([1000.0, 2000.0], [0.9, 0.88])  # nothing edited at 0
    assert view.run_curves.drawn("fluency") == ([0.0, 1000.0, 2000.0], [5.1, 4.9, 4.8])
    assert view.run_count == 3 + 3 + 2 + 3 + 3
    assert "run lifelong_10k: first facts retained" in _legend(view.retention.plot)
    assert "run lifelong_10k: specificity (neighbour sample)" in _legend(view.quality.plot)
    assert view.run_label.text().startswith("Run lifelong_10k (SmolLM2-360M, nse, unfinished): 2 checkpoints to 2,000 edits")
    assert view.point_count == 1  # the project's own line stays
    assert view.retention.plot.viewRange()[0][1] >= 2000  # the x axis makes room for the longer run

    view.clear_run_button.click()
    assert view.run_count == 0 and view.run_curves.drawn("retention_first") == ([], [])
    assert not any(text.startswith("run ") for text in _legend(view.retention.plot) + _legend(view.quality.plot))
    assert not view.clear_run_button.isEnabled()


def test_a_result_without_curves_says_so_and_draws_nothing(qtbot, session, tmp_path):
    view = RetentionView(session)
    qtbot.addWidget(view)
    view.show()
    plain = tmp_path / "bench_100x10.json"
    plain.write_text(json.dumps({"efficacy": 0.9}))
    assert not view.load_run(str(plain))
    assert view.run_count == 0 and view.run_curves.run is None
    texts = [box.text() for box in error_dialogs()]
    assert len(texts) == 1 and "holds no checkpoint curves" in texts[0] and str(plain) in texts[0]
    for box in error_dialogs():
        box.close()


def test_a_damaged_curves_file_is_a_dialog_naming_the_checkpoint(qtbot, session, run_file):
    data = json.loads(run_file.read_text())
    data["checkpoints"]["points"][1]["fluency"] = "high"
    run_file.write_text(json.dumps(data))
    view = RetentionView(session)
    qtbot.addWidget(view)
    view.show()
    assert not view.load_run(str(run_file))
    texts = [box.text() for box in error_dialogs()]
    assert len(texts) == 1 and "checkpoint 2 has a fluency that is not a number" in texts[0]
    for box in error_dialogs():
        box.close()
