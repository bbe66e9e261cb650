"""On the real default model, before any edit: dev facts prefer their true answer, neighbours are right."""

import json
from pathlib import Path

import pytest

from nse_engine.editing.requests import EditRequest, NeighborhoodCheck
from nse_engine.evaluation import evaluate
from nse_engine.model.default_model import default_model_dir
from nse_engine.model.loading import load_model

FACTS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "facts_dev.jsonl"
# Resolved now, before the autouse fixture points NSE_DATA_DIR at a temporary folder: an already
# converted default model is loaded from there read-only instead of being converted again (~30 s).
CONVERTED = default_model_dir()


def dev_facts(n: int) -> list[EditRequest]:
    rows = [json.loads(line) for line in FACTS.read_text(encoding="utf-8").splitlines()[:n]]
    return [
        EditRequest(
            subject=r["subject"], prompt=r["prompt"], target_new=r["target_new"], target_true=r["target_true"],
            paraphrases=tuple(r["paraphrase_prompts"]),
            neighborhood=tuple(NeighborhoodCheck(x["prompt"], x["target"]) for x in r["neighborhood"]),
            relation=r["relation"], fact_id=i,
        )
        for i, r in enumerate(rows)
    ]


@pytest.mark.integration
@pytest.mark.skipif(not FACTS.exists(), reason=f"dev facts not found at {FACTS}")
def test_unedited_default_model_prefers_true_answers():
    source = CONVERTED if (CONVERTED / "nse-conversion.json").exists() else "default"
    loaded = load_model(source, device="cpu")
    summary = evaluate(loaded, dev_facts(10), generation=True)
    assert summary.n_facts == 10
    assert summary.efficacy <= 0.3  # target_new is a counterfactual: not preferred before editing
    assert summary.generation <= 0.2
    assert summary.specificity >= 0.7
    assert sum(f.prob_true > f.prob_new for f in summary.facts) >= 7
