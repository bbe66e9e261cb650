"""On the real default model (SmolLM2-135M): a handful of dev facts are edited and neighbours kept."""

import pytest

from nse_engine.editing.hparams import NseHyperParams
from nse_engine.editing.session import EditingSession
from nse_engine.evaluation import evaluate
from nse_engine.model.loading import load_model
from dev_facts import dev_facts

# The settings derived for SmolLM2-135M (nse_engine/editing/derive.py), with a test-sized statistics
# sample (8,192 tokens, 5 × d_ff: the default's 131,072 take the suite's one worker minutes): C
# regularises the solve and the assertions are about edits applying, not their last hundredth.
SMOLLM2 = NseHyperParams.flat(
    layers=(2, 3, 4, 5, 6, 7, 8), v_lr=1.513, v_num_grad_steps=25, alpha=53.93,
    upper_bound=539.28, mom2_update_weight=13270.3, neuron_threshold=0.8, earlier_edits_weight=10.0,
    layer_share_ratio=0.9, max_iterations=5, refresh_drifted=True, verify_passes=3, context_prefixes=2,
    stats_tokens=8192,
)


@pytest.mark.integration
def test_edits_apply_and_neighbours_are_kept(default_model_path):
    loaded = load_model(default_model_path, device="cpu")
    facts = dev_facts(6)
    before = evaluate(loaded, facts, generation=False)
    session = EditingSession(loaded, SMOLLM2)
    result = session.apply_round(facts)
    assert len(result.applied) == len(facts)
    after = evaluate(loaded, facts, generation=True)
    assert before.efficacy <= 0.2
    assert after.efficacy >= 5 / 6
    assert after.generation >= 4 / 6  # the model now says the new object, not just prefers it
    assert after.specificity >= before.specificity - 0.15
    with session.original_weights():
        assert evaluate(loaded, facts, generation=False).efficacy == before.efficacy
