"""A lifelong benchmark's checkpoints (`nse bench --checkpoint-every N`): fixed samples scored at
every checkpoint, the curves written after each, and a stopped run (cancelled, or a real `nse bench`
process killed) resumed without measuring a checkpoint twice or losing one."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
from dev_facts import FACTS as DEV_FACTS_FILE
from dev_facts import dev_facts
from reliability.faults import nse_env
from tiny import save_model

from nse_engine.bench import BenchConfig, run_benchmark
from nse_engine.bench_checkpoints import CheckpointConfig
from nse_engine.bench_curves import read_run_curves
from nse_engine.bench_progress import BenchProgress
from nse_engine.errors import Cancelled
from nse_engine.model.loading import load_model
from nse_engine.progress import JobControl

N_CASES = 6
CHECKPOINTS = CheckpointConfig(every=2, first=3, last=2, neighbours=3, chat=2, seed=7)
CONFIG = BenchConfig(limit=N_CASES, batch_size=1, checkpoints=CHECKPOINTS)
FIGURES = ("retention_first", "generalization_first", "generation_first", "efficacy_last", "generation_last",
           "specificity", "specificity_unedited_neighbours", "chat_answer", "fluency")
COSTS = ("seconds_per_edit", "peak_rss_mb", "state_mb", "log_mb", "checkpoint_seconds")


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    return save_model("gpt2", tmp_path_factory.mktemp("tiny") / "tiny-gpt2")


@pytest.fixture(scope="module")
def _cache(tmp_path_factory):
    return tmp_path_factory.mktemp("nse-cache")


@pytest.fixture(autouse=True)
def _one_cache(_isolated_dirs, _cache, monkeypatch):
    """The tiny model's statistics and settings are derived once for the module (the same every time)."""
    monkeypatch.setenv("NSE_CACHE_DIR", str(_cache))


def _counting(phases: dict[str, list[int]], stop: tuple[str, int] | None = None) -> JobControl:
    """Records the rounds and checkpoints started; cancels at (phase, done) when asked, as Ctrl+C does."""
    def on_progress(p) -> None:
        if p.phase in ("rounds", "checkpoint"):
            phases.setdefault(p.phase, []).append(p.done)
            if stop == (p.phase, p.done):
                control.cancel()
    control = JobControl(on_progress)
    return control


def _figures(point: dict) -> dict:
    return {k: v for k, v in point.items() if k not in COSTS and k != "edit_seconds_so_far"}


@pytest.fixture(scope="module")
def unbroken(model_folder, tmp_path_factory, _cache):
    with pytest.MonkeyPatch.context() as mp:  # as _isolated_dirs does for each test
        mp.setenv("NSE_CACHE_DIR", str(_cache))
        mp.setenv("NSE_DATA_DIR", str(tmp_path_factory.mktemp("data")))
        written: list[dict] = []
        phases: dict[str, list[int]] = {}
        progress = BenchProgress(tmp_path_factory.mktemp("whole") / "bench.progress")
        report = run_benchmark(load_model(model_folder, device="cpu"), dev_facts(N_CASES), CONFIG,
                               control=_counting(phases), progress=progress, on_checkpoint=written.append)
    return report.to_dict(), written, phases


def test_every_checkpoint_scores_the_same_fixed_samples_and_hands_on_the_curves_so_far(unbroken):
    report, written, phases = unbroken
    block = report["checkpoints"]
    assert report["status"] == "complete"
    assert [p["cases_done"] for p in block["points"]] == [2, 4, 6] and phases["checkpoint"] == [0, 1, 2]
    samples = block["samples"]
    failed = {n["subject"] for n in report["not_applied"]}
    applied = [i for i, case in enumerate(dev_facts(N_CASES)) if case.subject not in failed]
    assert samples["first"] == applied[:3]
    assert len(samples["neighbours"]) == 3 and len(samples["chat"]) == 2
    assert set(samples["chat"]) <= {0, 1}  # drawn from what the first checkpoint had applied
    assert {k: block[k] for k in ("every", "first", "last", "neighbours", "chat", "seed")} == \
        {"every": 2, "first": 3, "last": 2, "neighbours": 3, "chat": 2, "seed": 7}
    for point in block["points"]:
        assert all(point[k] is not None for k in FIGURES), point
        assert all(point[k] > 0 for k in COSTS), point
        assert point["first_facts"] == min(3, point["edits_applied"])
    assert block["points"][-1]["last_cases"] == applied[-2:]  # the newest facts, a fixed number of them
    assert block["unedited"]["fluency"] == report["fluency_before"]

    # the result so far after each checkpoint: one point more each time, marked unfinished
    assert [len(w["checkpoints"]["points"]) for w in written] == [1, 2, 3]
    assert all(w["status"] == "running" and w["model"] == report["model"] for w in written)
    assert written[-1]["checkpoints"]["points"] == block["points"]


def test_a_stopped_run_resumes_without_measuring_a_checkpoint_twice(model_folder, unbroken, tmp_path):
    whole = unbroken[0]["checkpoints"]
    progress = BenchProgress(tmp_path / "bench.progress")
    with pytest.raises(Cancelled):  # stopped in round 4: the checkpoint after round 2 is saved
        run_benchmark(load_model(model_folder, device="cpu"), dev_facts(N_CASES), CONFIG,
                      control=_counting({}, ("rounds", 3)), progress=progress)
    saved = json.loads(progress.rounds_path.read_text())["checkpoints"]
    assert [p["cases_done"] for p in saved] == [2]

    phases: dict[str, list[int]] = {}
    resumed = run_benchmark(load_model(model_folder, device="cpu"), dev_facts(N_CASES), CONFIG,
                            control=_counting(phases), progress=progress).checkpoints
    assert phases == {"rounds": [3, 4, 5], "checkpoint": [1, 2]}
    assert resumed["points"][0] == saved[0]  # kept as measured, not measured again
    assert [_figures(p) for p in resumed["points"]] == [_figures(p) for p in whole["points"]]
    assert resumed["samples"] == whole["samples"] and resumed["unedited"] == whole["unedited"]


def test_a_stop_while_a_checkpoint_is_measured_measures_it_on_resume_without_editing_again(model_folder, unbroken,
                                                                                           tmp_path):
    whole = unbroken[0]["checkpoints"]
    progress = BenchProgress(tmp_path / "bench.progress")
    with pytest.raises(Cancelled):  # round 4 saved, its checkpoint not
        run_benchmark(load_model(model_folder, device="cpu"), dev_facts(N_CASES), CONFIG,
                      control=_counting({}, ("checkpoint", 1)), progress=progress)
    assert json.loads(progress.rounds_path.read_text())["rounds_done"] == 4

    phases: dict[str, list[int]] = {}
    resumed = run_benchmark(load_model(model_folder, device="cpu"), dev_facts(N_CASES), CONFIG,
                            control=_counting(phases), progress=progress).checkpoints
    assert phases == {"checkpoint": [1, 2], "rounds": [4, 5]}
    assert [_figures(p) for p in resumed["points"]] == [_figures(p) for p in whole["points"]]


def _points(path) -> list[dict]:
    try:
        return json.loads(path.read_text())["checkpoints"]["points"]
    except (OSError, ValueError, KeyError):
        return []


def test_nse_bench_killed_after_a_checkpoint_keeps_its_curve_and_the_same_command_finishes_it(model_folder, tmp_path):
    out = tmp_path / "lifelong.json"
    command = [sys.executable, "-m", "nse_engine.cli", "bench", "--model", str(model_folder),
               "--cases", str(DEV_FACTS_FILE), "--limit", str(N_CASES), "--batch-size", "1", "--json", str(out),
               "--checkpoint-every", "2", "--first-sample", "3", "--last-sample", "2", "--neighbour-sample", "3",
               "--chat-sample", "2", "--sample-seed", "7"]
    err = tmp_path / "killed.err"
    with open(err, "w") as err_file:
        killed = subprocess.Popen(command, env=nse_env(OMP_NUM_THREADS="1"), stdout=subprocess.DEVNULL, stderr=err_file)
    deadline = time.monotonic() + 600
    while not _points(out) and killed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert killed.returncode == -signal.SIGKILL, f"the run ended before it could be killed: {err.read_text()[-3000:]}"
    first = _points(out)
    assert first and first[0]["cases_done"] == 2
    assert json.loads(out.read_text())["status"] == "running"
    assert read_run_curves(out).complete is False

    done = subprocess.run(command, env=nse_env(OMP_NUM_THREADS="1"), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resumed after round(s)" in done.stdout and "3 checkpoints" in done.stdout
    result = json.loads(out.read_text())
    points = result["checkpoints"]["points"]
    assert [p["cases_done"] for p in points] == [2, 4, 6]  # none lost, none twice
    assert points[0] == first[0]
    assert result["status"] == "complete" and len(result["processes"]) == 2
    assert {"commit", "command", "date"} <= set(result["provenance"])
    assert "--checkpoint-every 2" in result["provenance"]["command"]

    chart = tmp_path / "curves.png"
    drawn = subprocess.run([sys.executable, "-m", "nse_engine.cli", "bench-chart", str(out), "--png", str(chart)],
                           env=nse_env(), capture_output=True, text=True, timeout=300)
    assert drawn.returncode == 0, drawn.stderr
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_result_without_curves_is_one_error_line(tmp_path):
    plain = tmp_path / "bench_100x10.json"
    plain.write_text(json.dumps({"efficacy": 0.9}))
    rc = subprocess.run([sys.executable, "-m", "nse_engine.cli", "bench-chart", str(plain), "--png",
                         str(tmp_path / "c.png")], env=nse_env(), capture_output=True, text=True, timeout=300)
    assert rc.returncode == 2 and "Traceback" not in rc.stderr
    assert rc.stderr.strip() == (f"error: {plain} holds no checkpoint curves; run `nse bench --checkpoint-every N "
                                 f"--json bench_100x10.json` to measure them")
