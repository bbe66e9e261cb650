"""`nse compare`: method names with switches, and the report files a comparison writes."""

import json

import pytest

from nse_engine.compare import parse_methods
from nse_engine.compare_report import markdown_table, write_comparison
from nse_engine.errors import NseError


def test_methods_and_switches_are_parsed_and_wrong_names_refused():
    runs = parse_methods("nse, memit+nas,alphaedit+nas+encore")
    assert [(r.label, r.method) for r in runs] == [("nse", "nse"), ("memit+nas", "memit"), ("alphaedit+nas+encore", "alphaedit")]
    assert runs[1].overrides == {"norm_anchoring": True}
    assert runs[2].overrides == {"norm_anchoring": True, "encore": True}
    for bad in ("rome", "nse+fast", "nse,nse", ""):
        with pytest.raises(NseError):
            parse_methods(bad)


def _report(efficacy: float) -> dict:
    figures = {"efficacy": efficacy, "generalization": 0.8, "specificity": 0.7, "pre_efficacy": 0.05,
               "pre_specificity": 0.84, "pre_generation": 0.0, "fluency_before": 5.1, "fluency_after": 5.0,
               "seconds_per_edit": 1.5, "chat_answer": None}
    return figures | {"retention_curve": [{"edits_applied": 20, "efficacy_on_earlier": 0.9}],
                      "generation_curve": [{"edits_applied": 10, "generation_on_applied": 0.8},
                                           {"edits_applied": 20, "generation_on_applied": 0.7}]}


def test_a_comparison_writes_its_table_json_and_charts(tmp_path):
    comparison = {"cases": 20, "batch_size": 10, "model": "tiny", "methods": ["nse", "memit"],
                  "results": {"nse": _report(0.95), "memit": _report(0.9)}}
    written = write_comparison(tmp_path / "out", comparison)
    assert [p.name for p in written] == ["compare.json", "compare.md", "retention.png", "generation.png"]
    saved = json.loads(written[0].read_text(encoding="utf-8"))
    assert saved["results"]["memit"]["efficacy"] == 0.9 and "commit" in saved["provenance"]
    table = markdown_table(comparison)
    assert "| nse | 0.950 |" in table and "| memit | 0.900 |" in table and "| – |" in table  # a missing figure
    for chart in written[2:]:
        assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and chart.stat().st_size > 5000


def test_a_stopped_comparison_keeps_its_finished_methods_and_a_rerun_does_only_the_rest(tmp_path, shared_cache):
    from reliability.faults import FACTS
    from tiny import save_model

    from nse_engine.bench import BenchConfig
    from nse_engine.compare import run_comparison
    from nse_engine.compare_report import read_comparison
    from nse_engine.errors import Cancelled
    from nse_engine.facts import EditRequest
    from nse_engine.model.loading import load_model
    from nse_engine.progress import JobControl

    loaded = load_model(save_model("gpt2", tmp_path / "tiny-gpt2"), device="cpu")
    cases = [EditRequest(subject=s, prompt=p, target_new=new, target_true=true) for s, p, new, true in FACTS[:2]]
    config = BenchConfig(limit=2, batch_size=2)
    out = tmp_path / "compare"
    runs = parse_methods("nse,memit")

    rounds_run: list[str] = []

    def watch(progress, stop_at_second_method: bool) -> None:
        if progress.phase == "rounds":
            rounds_run.append(progress.message.split()[0])
        if stop_at_second_method and progress.phase == "methods" and progress.done == 1:
            control.cancel()

    control = JobControl(lambda p: watch(p, stop_at_second_method=True))
    with pytest.raises(Cancelled):
        run_comparison(loaded, cases, config, runs, control=control, save=lambda c: write_comparison(out, c))
    saved = read_comparison(out)
    assert list(saved["results"]) == ["nse"] and rounds_run == ["nse"]
    assert "specificity –" in (out / "compare.md").read_text(encoding="utf-8")  # facts without neighbours
    nse_date = saved["results"]["nse"]["provenance"]["date"]

    rounds_run.clear()
    control = JobControl(lambda p: watch(p, stop_at_second_method=False))
    comparison = run_comparison(loaded, cases, config, runs, control=control, earlier=saved,
                                save=lambda c: write_comparison(out, c))
    assert rounds_run == ["memit"] and comparison["kept"] == ["nse"]  # NSE was not edited again
    assert comparison["results"]["nse"]["provenance"]["date"] == nse_date
    assert set(read_comparison(out)["results"]) == {"nse", "memit"}

    rounds_run.clear()  # other settings are another experiment: the method runs again
    again = run_comparison(loaded, cases, config, parse_methods("memit"), {"mom2_update_weight": 123.0}, control,
                           earlier=read_comparison(out))
    assert rounds_run == ["memit"] and again["results"]["nse"]["provenance"]["date"] == nse_date  # NSE's column stays
    with pytest.raises(NseError, match="other facts"):  # a folder of other facts is not overwritten
        run_comparison(loaded, cases[:1], BenchConfig(limit=1, batch_size=2), runs, earlier=read_comparison(out))


def test_a_bench_result_becomes_a_comparison_column_that_compare_keeps(tmp_path, shared_cache):
    from reliability.faults import FACTS
    from tiny import save_model

    from benchmarks.compare_from_bench import add_bench_result
    from nse_engine.bench import BenchConfig, run_benchmark
    from nse_engine.compare import run_comparison
    from nse_engine.compare_report import read_comparison
    from nse_engine.facts import EditRequest
    from nse_engine.model.loading import load_model

    loaded = load_model(save_model("gpt2", tmp_path / "tiny-gpt2"), device="cpu")
    cases = [EditRequest(subject=s, prompt=p, target_new=new, target_true=true) for s, p, new, true in FACTS[:2]]
    config = BenchConfig(limit=2, batch_size=2)
    report = run_benchmark(loaded, cases, config).to_dict()  # as `nse bench` writes it
    out = tmp_path / "compare"
    add_bench_result(out, report, cases)
    comparison = run_comparison(loaded, cases, config, parse_methods("nse"), earlier=read_comparison(out))
    assert comparison["kept"] == ["nse"] and comparison["results"]["nse"]["efficacy"] == report["efficacy"]
    with pytest.raises(NseError, match="other facts"):
        add_bench_result(out, report, cases[:1])
