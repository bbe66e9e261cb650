"""The peer methods on the real default model (SmolLM2-135M): each applies edits that show."""

import dataclasses

import pytest
import torch

from nse_engine.editing.derive import for_method
from nse_engine.editing.session import EditingSession
from nse_engine.editing.target_state import compute_target_states
from nse_engine.evaluation import evaluate
from nse_engine.model.loading import load_model
from nse_engine.progress import JobControl
from dev_facts import dev_facts
from test_default_model_integration import SMOLLM2


@pytest.fixture(scope="module")
def loaded(default_model_path):
    return load_model(default_model_path, device="cpu")


@pytest.mark.integration
def test_encore_early_stop_ends_once_the_new_object_is_top1_on_every_prompt(loaded):
    facts = dev_facts(3)
    session = EditingSession(loaded, SMOLLM2)
    session.prepare(JobControl())
    with torch.enable_grad():
        plain = compute_target_states(loaded.model, loaded.tokenizer, session.points, facts, SMOLLM2,
                                      session.prefixes, JobControl(), stop_nll=-1.0)
        early = compute_target_states(loaded.model, loaded.tokenizer, session.points, facts, SMOLLM2,
                                      session.prefixes, JobControl(), stop_nll=-1.0, stop_at_top1=True)
    assert (plain.steps == SMOLLM2.v_num_grad_steps - 1).all()
    assert (early.steps < plain.steps).all()


@pytest.mark.integration
@pytest.mark.parametrize("method", ["memit", "alphaedit"])
def test_peer_methods_apply_edits_that_show(loaded, method):
    facts = dev_facts(6)
    hp = for_method(SMOLLM2, method, alphaedit_l2=10.0, nullspace_threshold=0.02)
    session = EditingSession(loaded, dataclasses.replace(hp, stats_tokens=SMOLLM2.stats_tokens))
    try:
        result = session.apply_round(facts)
        after = evaluate(loaded, facts, generation=True)
    finally:
        session.undo_last_round()
    assert len(result.applied) == len(facts) and result.editing_passes == 1
    assert after.efficacy >= 4 / 6
