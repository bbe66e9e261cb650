"""What one `nse bench` run measured, as a typed record; its JSON file is `to_dict()`.

Research scripts, docs and `nse compare` read those files by key, so the keys and their order are
fixed here: the fields in order, and the ones that only some runs have left out when absent.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

Curve = list[dict[str, float]]  # points of a curve: {"edits_applied": n, <the measured share>: x}


@dataclass(frozen=True)
class BenchReport:
    """Scores after all rounds (and of the unedited model, pre_*), retention, speed and memory."""

    cases: int
    batch_size: int
    efficacy: float | None
    generalization: float | None
    specificity: float | None
    specificity_unedited_neighbours: float | None  # neighbours whose own prompt was not edited
    top1: float | None
    generation: float | None
    generation_paraphrase: float | None
    chat_answer: float | None
    neighbour_generation: float | None
    subject_spelling: float | None  # of the subjects the unedited model spelled right, the share still spelled
    subject_spelled_before: int
    fluency_before: float | None
    fluency_after: float | None
    pre_efficacy: float | None
    pre_generalization: float | None
    pre_specificity: float | None
    pre_specificity_unedited_neighbours: float | None
    pre_generation: float | None
    pre_generation_paraphrase: float | None
    pre_chat_answer: float | None
    pre_neighbour_generation: float | None
    first_round_retention: float | None  # of every case of the first round, applied or not
    retention_curve: Curve  # efficacy_on_earlier after each round with earlier edits
    generation_curve: Curve  # generation_on_applied after each round
    method: str
    not_applied: list[dict[str, object]]  # {"subject", "reason"} of each fact a round did not apply
    refreshed_per_round: list[int]
    seconds_per_edit: float
    seconds_by_phase: dict[str, float]  # per edit
    edit_seconds_total: float
    peak_rss_mb: float
    device: str
    dtype: str
    torch_threads: int
    model: str
    settings: dict[str, object]  # NseHyperParams.to_dict()
    # only some runs have these (None: left out of the JSON)
    status: str | None = None  # "complete": a run with checkpoints, whose file said "running" meanwhile
    checkpoints: dict[str, Any] | None = None  # bench_checkpoints' block (JSON: sizes, samples, points)
    per_fact_baseline: dict[str, float] | None = None  # seconds per target state, per-fact vs batched
    resumed_after_rounds: list[int] | None = None  # the rounds ran in several processes
    processes: list[dict[str, str]] | None = None  # each one's provenance, with resumed_after_rounds

    def to_dict(self) -> dict[str, object]:
        """The JSON object `nse bench` writes."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        return {name: value for name, value in data.items() if value is not None or name not in _ONLY_SOME_RUNS}


_ONLY_SOME_RUNS = ("status", "checkpoints", "per_fact_baseline", "resumed_after_rounds", "processes")
