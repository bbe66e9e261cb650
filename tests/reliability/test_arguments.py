"""Numbers and settings are checked when they are given, before any model loads."""

from __future__ import annotations

import threading

import pytest

from nse_engine.editing.settings import apply_settings, parse_setting
from nse_engine.errors import SettingsError
from nse_engine.progress import JobControl

from reliability.faults import FACTS, cli, edit_requests, error_line, new_workspace


@pytest.mark.parametrize(
    "option, message",
    [
        (("--batch-size", "-1"), "--batch-size: must be a whole number of at least 1, got -1"),
        (("--limit", "-1"), "--limit: must be a whole number of at least 1, got -1"),
        (("--limit", "two"), "--limit: must be a whole number of at least 1, got 'two'"),
        (("--set", "neuron_threshold=2"), "neuron_threshold=2: neuron_threshold must be in (0, 1]"),
        (("--set", "max_iterations=0"), "max_iterations=0: max_iterations must be at least 1"),
        (("--set", "max_iterations=1.5"), "max_iterations must be a whole number, got '1.5'"),
        (("--set", "layers=4,x"), "layers must be layer numbers such as 4,5,6 or 4-6"),
        (("--set", "alpha"), "--set needs NAME=VALUE"),
    ],
)
def test_nse_edit_checks_numbers_and_settings_before_loading_the_model(tmp_path, capsys, option, message):
    rc, out, err = cli(capsys, "edit", "--model", tmp_path / "no-such-model", "--cases", tmp_path / "f.csv",
                       "--project", tmp_path / "p", *option)
    assert message in error_line(rc, err)


def test_nse_bench_checks_its_numbers_too(tmp_path, capsys):
    rc, out, err = cli(capsys, "bench", "--model", tmp_path / "m", "--cases", tmp_path / "f.csv", "--json",
                       tmp_path / "r.json", "--batch-size", "0")
    assert "--batch-size" in error_line(rc, err)


def test_settings_parse_to_their_types():
    assert parse_setting("alpha", "2.5") == 2.5
    assert parse_setting("max_iterations", "4") == 4
    assert parse_setting("refresh_drifted", "yes") is True and parse_setting("encore", "false") is False
    assert parse_setting("layers", "3,4") == (3, 4) and parse_setting("layers", "2-4") == (2, 3, 4)
    assert parse_setting("layers", "[1, 2]") == (1, 2)
    assert parse_setting("upper_bound", "inf") == float("inf")
    with pytest.raises(SettingsError, match="unknown setting 'bogus'; settings are: layers, v_lr"):
        parse_setting("bogus", "1")
    with pytest.raises(SettingsError, match="alpha must be a number, got 'abc'"):
        parse_setting("alpha", "abc")
    with pytest.raises(SettingsError, match="alpha must be a number, got 'nan'"):
        parse_setting("alpha", "nan")
    with pytest.raises(SettingsError, match="'source' is not a setting"):
        parse_setting("source", "x")


def test_settings_that_depend_on_each_other_or_on_the_model(tmp_path):
    workspace = new_workspace(tmp_path / "project")
    with workspace.closing():
        with pytest.raises(SettingsError, match="alpha must be ≥ 0 and below upper_bound"):
            apply_settings(workspace.hparams, {"alpha": "5", "upper_bound": "1"}, n_layers=4)
        with pytest.raises(SettingsError, match=r"outside the model's 0..3"):
            apply_settings(workspace.hparams, {"layers": (3, 4)}, n_layers=4)
        changed = apply_settings(workspace.hparams, {"alpha": 0.5, "max_iterations": "2"}, n_layers=4)
        assert (changed.passes.alpha, changed.passes.max_iterations, changed.source) == (0.5, 2, "derived+user")


def test_the_apps_batch_job_refuses_a_bad_setting_with_a_settings_error(tmp_path):
    from nse_app import jobs
    from nse_app.worker import JobContext

    workspace = new_workspace(tmp_path / "project")
    with workspace.closing():
        ids = workspace.project.queue.queue_facts(edit_requests(FACTS[:1]))
        engine = jobs.Engine(loaded=workspace.loaded, workspace=workspace)
        ctx = JobContext(JobControl(), threading.Event(), lambda value: None)
        with pytest.raises(SettingsError, match="alpha must be a number, got 'abc'"):
            jobs.run_queue(engine, ctx, ids, 10, {"alpha": "abc"})
        assert workspace.project.queries.batches() == []
