"""On the real default model, before any edit: dev facts prefer their true answer, neighbours are right."""

import pytest

from nse_engine.evaluation import evaluate
from nse_engine.model.loading import load_model
from dev_facts import dev_facts


@pytest.mark.integration
def test_unedited_default_model_prefers_true_answers(default_model_path):
    loaded = load_model(default_model_path, device="cpu")
    summary = evaluate(loaded, dev_facts(10), generation=True)
    assert summary.n_facts == 10
    assert summary.efficacy <= 0.3  # target_new is a counterfactual: not preferred before editing
    assert summary.generation <= 0.2
    assert summary.specificity >= 0.7
    assert sum(f.prob_true > f.prob_new for f in summary.facts) >= 7
