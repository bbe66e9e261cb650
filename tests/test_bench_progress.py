"""A benchmark stopped part-way (crash, Ctrl+C, end of a session) resumes after its last finished
round and reports exactly what an uninterrupted run reports."""

import json

import pytest
import torch
from reliability.faults import FACTS, cli, write_facts_csv
from tiny import save_model

from nse_engine.bench import BenchConfig, run_benchmark
from nse_engine.bench_progress import BenchProgress
from nse_engine.errors import Cancelled
from nse_engine.facts import EditRequest
from nse_engine.model.architecture import find_edit_points
from nse_engine.model.loading import load_model
from nse_engine.progress import JobControl

FIGURES = ("efficacy", "generalization", "specificity", "specificity_unedited_neighbours", "top1", "generation",
           "generation_paraphrase", "chat_answer", "neighbour_generation", "subject_spelling", "subject_spelled_before",
           "fluency_before", "fluency_after", "first_round_retention", "retention_curve", "generation_curve",
           "not_applied", "refreshed_per_round", "settings", "pre_efficacy", "pre_specificity", "pre_generation",
           "pre_chat_answer", "pre_neighbour_generation")
CONFIG = BenchConfig(limit=3, batch_size=1)
# The tiny model's statistics and derived settings are computed once for the session, not per test.
pytestmark = pytest.mark.usefixtures("shared_cache")


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    return save_model("gpt2", tmp_path_factory.mktemp("tiny") / "tiny-gpt2")


def _cases() -> list[EditRequest]:
    return [EditRequest(subject=s, prompt=p, target_new=new, target_true=true) for s, p, new, true in FACTS[:3]]


def _stop_before_round(n: int) -> JobControl:
    control = JobControl(lambda p: control.cancel() if p.phase == "rounds" and p.done == n else None)
    return control


def _counting(rounds_run: list[int]) -> JobControl:
    return JobControl(lambda p: rounds_run.append(p.done) if p.phase == "rounds" else None)


def _stopped_run(model_folder, progress: BenchProgress, before_round: int = 2) -> None:
    with pytest.raises(Cancelled):
        run_benchmark(load_model(model_folder, device="cpu"), _cases(), CONFIG,
                      control=_stop_before_round(before_round), progress=progress)


def _edited_weights(loaded) -> list[torch.Tensor]:
    points = find_edit_points(loaded.model)
    return [points.weight(layer).detach().clone() for layer in range(points.n_layers)]


def _same_weights(resumed: list[torch.Tensor], whole: list[torch.Tensor]) -> bool:
    """Equal up to float32 rounding (BLAS may round differently with other memory alignment)."""
    return all(torch.allclose(a, b, rtol=0, atol=1e-6) for a, b in zip(resumed, whole))


@pytest.fixture(scope="module")
def unbroken(model_folder, _shared_cache):
    loaded = load_model(model_folder, device="cpu")
    base = _edited_weights(loaded)
    with pytest.MonkeyPatch.context() as env:  # built before any test's own folders are set
        env.setenv("NSE_CACHE_DIR", str(_shared_cache))
        report = run_benchmark(loaded, _cases(), CONFIG).to_dict()  # as `nse bench` writes it
    edited = _edited_weights(loaded)
    assert not _same_weights(edited, base)  # the edits are large enough for the weight checks to mean something
    return report, edited


def test_a_stopped_benchmark_resumes_after_its_last_round_with_the_same_figures(model_folder, unbroken, tmp_path):
    whole, whole_weights = unbroken
    progress = BenchProgress(tmp_path / "bench.progress")
    _stopped_run(model_folder, progress)
    assert json.loads((progress.folder / "rounds.json").read_text())["rounds_done"] == 2

    rounds_run: list[int] = []
    loaded = load_model(model_folder, device="cpu")
    resumed = run_benchmark(loaded, _cases(), CONFIG, control=_counting(rounds_run), progress=progress).to_dict()

    assert rounds_run == [2]  # only the third round was edited again
    assert {k: resumed[k] for k in FIGURES} == {k: whole[k] for k in FIGURES}
    assert _same_weights(_edited_weights(loaded), whole_weights)
    assert resumed["resumed_after_rounds"] == [2] and len(resumed["processes"]) == 2
    assert "resumed_after_rounds" not in whole


def test_a_stop_between_saving_the_session_and_its_rounds_redoes_that_round(model_folder, unbroken, tmp_path):
    whole, whole_weights = unbroken
    progress = BenchProgress(tmp_path / "bench.progress")
    _stopped_run(model_folder, progress)  # the session holds 2 rounds
    rounds_file = progress.folder / "rounds.json"
    saved = json.loads(rounds_file.read_text())
    saved.update(rounds_done=1, applied=saved["applied"][:1], refreshed_per_round=saved["refreshed_per_round"][:1],
                 generation_curve=saved["generation_curve"][:1], retention_curve=[], not_applied=[],
                 seconds_by_phase={}, edit_seconds=0.0)
    rounds_file.write_text(json.dumps(saved))  # as if the process died before recording round 2

    rounds_run: list[int] = []
    loaded = load_model(model_folder, device="cpu")
    resumed = run_benchmark(loaded, _cases(), CONFIG, control=_counting(rounds_run), progress=progress).to_dict()

    assert rounds_run == [1, 2] and resumed["resumed_after_rounds"] == [1]
    assert {k: resumed[k] for k in FIGURES} == {k: whole[k] for k in FIGURES}
    assert _same_weights(_edited_weights(loaded), whole_weights)


def test_progress_of_other_settings_or_facts_is_deleted_not_resumed(model_folder, unbroken, tmp_path):
    whole, _ = unbroken
    progress = BenchProgress(tmp_path / "bench.progress")
    _stopped_run(model_folder, progress)

    rounds_run: list[int] = []
    other = run_benchmark(load_model(model_folder, device="cpu"), _cases(), CONFIG, {"mom2_update_weight": 123.0},
                          _counting(rounds_run), progress=progress).to_dict()
    assert rounds_run == [0, 1, 2] and "resumed_after_rounds" not in other
    assert other["settings"]["mom2_update_weight"] == 123.0
    now = json.loads((progress.folder / "rounds.json").read_text())  # the stale rounds were replaced
    assert now["rounds_done"] == 3 and now["run"]["settings"]["mom2_update_weight"] == 123.0

    _stopped_run(model_folder, progress)
    rounds_run.clear()
    run_benchmark(load_model(model_folder, device="cpu"), _cases()[::-1], CONFIG, control=_counting(rounds_run),
                  progress=progress)
    assert rounds_run == [0, 1, 2]

    _stopped_run(model_folder, progress)  # a stale session under this run's rounds record is not trusted
    (progress.folder / "session.safetensors").unlink()
    rounds_run.clear()
    loaded = load_model(model_folder, device="cpu")
    again = run_benchmark(loaded, _cases(), CONFIG, control=_counting(rounds_run), progress=progress).to_dict()
    assert rounds_run == [0, 1, 2] and {k: again[k] for k in FIGURES} == {k: whole[k] for k in FIGURES}


def test_nse_bench_resumes_when_the_same_command_is_run_again(model_folder, tmp_path, capsys):
    cases = write_facts_csv(tmp_path / "facts.csv", [(c.subject, c.prompt, c.target_new, c.target_true) for c in _cases()])
    out = tmp_path / "bench.json"
    progress = BenchProgress(tmp_path / "bench.progress")
    args = ["bench", "--model", model_folder, "--cases", cases, "--limit", "3", "--batch-size", "1", "--json", out]

    _stopped_run(model_folder, progress)
    rc, printed, err = cli(capsys, *args)
    assert rc == 0, err
    assert f"progress is saved in {progress.folder}" in printed
    assert "resumed after round(s) 2 from saved progress" in printed
    assert json.loads(out.read_text())["resumed_after_rounds"] == [2]
    assert not progress.folder.exists()  # a finished benchmark leaves no progress behind

    _stopped_run(model_folder, progress)
    rc, printed, err = cli(capsys, *args, "--fresh")
    assert rc == 0, err
    assert "resumed" not in printed and "resumed_after_rounds" not in json.loads(out.read_text())
