"""`nse bench`'s JSON file keeps its keys and their order (research scripts, docs and `nse compare`
read them): the typed report writes the same object the dict it replaced did."""

from dataclasses import fields

from nse_engine.bench_report import BenchReport

KEYS = [
    "cases", "batch_size", "efficacy", "generalization", "specificity", "specificity_unedited_neighbours", "top1",
    "generation", "generation_paraphrase", "chat_answer", "neighbour_generation", "subject_spelling",
    "subject_spelled_before", "fluency_before", "fluency_after", "pre_efficacy", "pre_generalization",
    "pre_specificity", "pre_specificity_unedited_neighbours", "pre_generation", "pre_generation_paraphrase",
    "pre_chat_answer", "pre_neighbour_generation", "first_round_retention", "retention_curve", "generation_curve",
    "method", "not_applied", "refreshed_per_round", "seconds_per_edit", "seconds_by_phase", "edit_seconds_total",
    "peak_rss_mb", "device", "dtype", "torch_threads", "model", "settings",
]
OPTIONAL = ["status", "checkpoints", "per_fact_baseline", "resumed_after_rounds", "processes"]


def _report(**optional: object) -> BenchReport:
    required = {f.name: 0.5 for f in fields(BenchReport) if f.name not in OPTIONAL}
    return BenchReport(**required | {"efficacy": None}, **optional)  # type: ignore[arg-type]


def test_a_reports_json_object_has_the_keys_of_earlier_versions_in_their_order():
    data = _report().to_dict()
    assert list(data) == KEYS
    assert data["efficacy"] is None  # a score the run could not measure is written as null, not left out


def test_the_keys_only_some_runs_have_come_last_and_only_when_they_have_them():
    data = _report(checkpoints={"points": []}, status="complete", resumed_after_rounds=[2], processes=[{}]).to_dict()
    assert list(data) == KEYS + ["status", "checkpoints", "resumed_after_rounds", "processes"]
    assert list(_report(per_fact_baseline={"facts": 1}).to_dict()) == KEYS + ["per_fact_baseline"]
