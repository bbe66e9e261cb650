"""A benchmark stopped part-way (crash, Ctrl+C, end of a session) resumes after its last finished
round and reports exactly what an uninterrupted run reports."""

import json

import pytest
from reliability.faults import FACTS
from tiny import save_model

from nse_engine.bench import BenchConfig, run_benchmark
from nse_engine.bench_progress import BenchProgress
from nse_engine.errors import Cancelled
from nse_engine.facts import EditRequest
from nse_engine.model.loading import load_model
from nse_engine.progress import JobControl

FIGURES = ("efficacy", "generalization", "specificity", "top1", "generation", "chat_answer", "subject_spelling",
           "fluency_before", "fluency_after", "first_round_retention", "retention_curve", "generation_curve",
           "not_applied", "refreshed_per_round", "settings")


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    return save_model("gpt2", tmp_path_factory.mktemp("tiny") / "tiny-gpt2")


def _cases() -> list[EditRequest]:
    return [EditRequest(subject=s, prompt=p, target_new=new, target_true=true) for s, p, new, true in FACTS[:3]]


def _stop_before_round(n: int) -> JobControl:
    control = JobControl(lambda p: control.cancel() if p.phase == "rounds" and p.done == n else None)
    return control


def test_a_stopped_benchmark_resumes_after_its_last_round_with_the_same_figures(model_folder, tmp_path):
    config = BenchConfig(limit=3, batch_size=1)
    whole = run_benchmark(load_model(model_folder, device="cpu"), _cases(), config)

    progress = BenchProgress(tmp_path / "bench.progress")
    with pytest.raises(Cancelled):
        run_benchmark(load_model(model_folder, device="cpu"), _cases(), config, control=_stop_before_round(2),
                      progress=progress)
    assert json.loads((progress.folder / "rounds.json").read_text())["rounds_done"] == 2

    rounds_run = []
    control = JobControl(lambda p: rounds_run.append(p.done) if p.phase == "rounds" else None)
    resumed = run_benchmark(load_model(model_folder, device="cpu"), _cases(), config, control=control,
                            progress=progress)

    assert rounds_run == [2]  # only the third round was edited again
    assert {k: resumed[k] for k in FIGURES} == {k: whole[k] for k in FIGURES}
    assert resumed["resumed_after_rounds"] == [2] and "resumed_after_rounds" not in whole
    assert not (progress.folder / "rounds.json").exists()  # the finished run's rounds are forgotten
    assert (progress.folder / "unedited.json").exists()  # the unedited scores stay for another method


def test_progress_of_other_settings_or_facts_is_not_resumed(model_folder, tmp_path):
    config = BenchConfig(limit=3, batch_size=1)
    progress = BenchProgress(tmp_path / "bench.progress")
    with pytest.raises(Cancelled):
        run_benchmark(load_model(model_folder, device="cpu"), _cases(), config, control=_stop_before_round(2),
                      progress=progress)

    rounds_run = []
    control = JobControl(lambda p: rounds_run.append(p.done) if p.phase == "rounds" else None)
    report = run_benchmark(load_model(model_folder, device="cpu"), _cases(), config, {"mom2_update_weight": 123.0},
                           control, progress=progress)
    assert rounds_run == [0, 1, 2] and "resumed_after_rounds" not in report
    assert report["settings"]["mom2_update_weight"] == 123.0

    with pytest.raises(Cancelled):
        run_benchmark(load_model(model_folder, device="cpu"), _cases(), config, control=_stop_before_round(2),
                      progress=progress)
    rounds_run.clear()
    run_benchmark(load_model(model_folder, device="cpu"), _cases()[::-1], config, control=control, progress=progress)
    assert rounds_run == [0, 1, 2]


def test_nse_bench_resumes_when_the_same_command_is_run_again(model_folder, tmp_path, capsys):
    from reliability.faults import cli, write_facts_csv

    cases = write_facts_csv(tmp_path / "facts.csv", [(c.subject, c.prompt, c.target_new, c.target_true) for c in _cases()])
    out = tmp_path / "bench.json"
    progress = BenchProgress(tmp_path / "bench.progress")
    with pytest.raises(Cancelled):  # the first process stops before its last round
        run_benchmark(load_model(model_folder, device="cpu"), _cases(), BenchConfig(limit=3, batch_size=1),
                      control=_stop_before_round(2), progress=progress)

    args = ["bench", "--model", model_folder, "--cases", cases, "--limit", "3", "--batch-size", "1", "--json", out]
    rc, printed, err = cli(capsys, *args)
    assert rc == 0, err
    assert f"progress is saved in {progress.folder}" in printed
    assert "resumed after round(s) 2 from saved progress" in printed
    assert json.loads(out.read_text())["resumed_after_rounds"] == [2]
    assert not progress.folder.exists()  # a finished benchmark leaves no progress behind

    rc, printed, err = cli(capsys, *args, "--fresh")
    assert rc == 0, err
    assert "resumed" not in printed
