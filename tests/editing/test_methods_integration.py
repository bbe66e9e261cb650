"""The peer methods on the real default model (SmolLM2-135M): each applies edits that show."""

import pytest
import torch

from nse_engine.editing.derive import for_method
from nse_engine.editing.prompts import tokenize_at_subject
from nse_engine.editing.session import EditingSession
from nse_engine.editing.target_state import compute_target_states
from nse_engine.evaluation import evaluate
from nse_engine.model.loading import load_model
from nse_engine.model.tokens import encode_target
from nse_engine.progress import JobControl
from dev_facts import dev_facts
from test_default_model_integration import SMOLLM2
from tiny import next_token_logp


@pytest.fixture(scope="module")
def loaded(default_model_path):
    return load_model(default_model_path, device="cpu")


@pytest.mark.integration
def test_encore_early_stop_ends_once_the_new_object_is_top1_on_every_prompt(loaded):
    facts = dev_facts(3)
    session = EditingSession(loaded, SMOLLM2)
    session.prepare(JobControl())
    with torch.enable_grad():  # without a stop every state takes all its steps (v_num_grad_steps − 1)
        early = compute_target_states(loaded.model, loaded.tokenizer, session.points, facts, SMOLLM2,
                                      session.prefixes, JobControl(), stop_nll=-1.0, stop_margin=0.0)
    assert (early.steps < SMOLLM2.target.v_num_grad_steps - 1).all()


@pytest.mark.integration
def test_no_target_state_stops_before_its_new_object_leads_by_the_margin(loaded):
    facts = dev_facts(4)
    margin = 1.0
    session = EditingSession(loaded, SMOLLM2)
    session.prepare(JobControl())
    with torch.enable_grad():
        states = compute_target_states(loaded.model, loaded.tokenizer, session.points, facts, SMOLLM2,
                                       session.prefixes, JobControl(), stop_nll=-1.0, stop_margin=margin)
    stopped = states.steps < SMOLLM2.target.v_num_grad_steps - 1  # by the rule, not by running out of steps
    assert int(stopped.sum()) >= 3
    for fact, z, done in zip(facts, states.z, stopped.tolist()):
        prompt, subject_end = tokenize_at_subject(loaded.tokenizer, "", fact.prompt, fact.subject)
        target = encode_target(loaded.tokenizer, fact.target_new)
        for i, token in enumerate(target if done else []):  # teacher-forced, on the bare prompt
            logp = next_token_logp(loaded.model, prompt + target[:i], session.points, SMOLLM2.layers[-1],
                                   subject_end, z)
            lead = logp[token] - logp.scatter(0, torch.tensor([token]), float("-inf")).max()
            assert float(lead) >= margin


@pytest.mark.integration
@pytest.mark.parametrize("method", ["memit", "alphaedit"])
def test_peer_methods_apply_edits_that_show(loaded, method):
    facts = dev_facts(6)
    hp = for_method(SMOLLM2, method, alphaedit_l2=10.0, nullspace_threshold=0.02)
    session = EditingSession(loaded, hp.replace(stats_tokens=SMOLLM2.preparation.stats_tokens))
    try:
        result = session.apply_round(facts)
        after = evaluate(loaded, facts, generation=True)
    finally:
        session.undo_last_round()
    assert len(result.applied) == len(facts) and result.editing_passes == 1
    assert after.efficacy >= 4 / 6
