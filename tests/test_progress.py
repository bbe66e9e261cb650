"""Progress records and cancellation as the app and CLI see them."""

import time

import pytest

from nse_engine.errors import Cancelled
from nse_engine.progress import JobControl, Progress


def test_records_carry_phase_counts_and_fraction():
    seen = []
    control = JobControl(seen.append)
    control.report("target states", 0, 4)
    control.report("target states", 1, 4, "chunk 1")
    assert [(p.phase, p.done, p.total) for p in seen] == [("target states", 0, 4), ("target states", 1, 4)]
    assert seen[1].fraction == 0.25 and seen[1].message == "chunk 1"
    assert seen[1].eta_s is not None and seen[1].eta_s >= 0


def test_a_phase_that_starts_again_restarts_its_clock():
    seen = []
    control = JobControl(seen.append)
    control.report("layer updates", 0, 2)
    time.sleep(0.05)  # so the first run's clock is clearly ahead of a restarted one
    control.report("layer updates", 2, 2)
    control.report("layer updates", 0, 2)
    assert seen[1].elapsed_s >= 0.05
    assert seen[2].elapsed_s < seen[1].elapsed_s


def test_cancel_stops_the_job_at_its_next_report():
    control = JobControl()
    control.report("evaluation", 0, 3)
    control.cancel()
    with pytest.raises(Cancelled):
        control.report("evaluation", 1, 3)


def test_a_redirected_cli_line_says_how_far_and_how_long_is_left():
    from nse_engine.cli.progress_bar import describe

    assert describe(Progress("computing statistics", 25, 100, "layer 4", elapsed_s=30.0)) == \
        "25/100 (25%), 1:30 left, layer 4"
    assert describe(Progress("loading", 0, None)) == "started"


def test_a_rounds_progress_never_passes_its_total_while_extra_passes_run():
    """The extra verification passes count in the total of 'layer updates' (a bar at 140 % told
    the user nothing about what was left)."""
    from nse_engine.editing.session import EditingSession
    from nse_engine.facts import EditRequest
    from tiny import tiny_hparams, tiny_loaded

    seen: list[Progress] = []
    session = EditingSession(tiny_loaded(), tiny_hparams(max_iterations=1, verify_passes=2))
    session.apply_round([EditRequest("Toko Yasuda", "{} plays the", "guitar"),
                         EditRequest("Danielle Darrieux", "{} is a native speaker of", "French")],
                        JobControl(seen.append))
    passes = [p for p in seen if p.phase == "layer updates" and p.message.startswith("pass ")]
    assert any(p.message.startswith("pass 2") for p in passes)  # an extra pass ran
    assert all(p.done <= p.total for p in passes)
