"""Early stopping of target states by ENCORE's most-probable rule: a fact the model already says
costs no step and keeps its state (that no fact stops short of the margin is checked on the
default model in test_methods_integration.py)."""

from __future__ import annotations

import torch

from nse_engine.editing.target_state import compute_target_states
from nse_engine.facts import EditRequest
from nse_engine.model.architecture import find_edit_points
from nse_engine.model.tokens import encode_prompt, encode_target
from nse_engine.progress import JobControl
from tiny import make_model, make_tokenizer, next_token_logp, tiny_hparams


def test_a_fact_the_model_already_says_takes_no_step_and_keeps_its_state():
    tok = make_tokenizer()
    model = make_model("llama", tok)
    points = find_edit_points(model)
    said = EditRequest("Danielle", "{} Darrieux is a", "Ger")
    assert encode_target(tok, "Ger") == [int(next_token_logp(model, encode_prompt(tok, said.text)).argmax())], \
        "the tiny model no longer continues this prompt with ' Ger': pick another"
    not_said = EditRequest("Toko Yasuda", "{} plays the", "guitar")
    hp = tiny_hparams(v_num_grad_steps=10)
    with torch.enable_grad():
        states = compute_target_states(model, tok, points, [said, not_said], hp, [], JobControl(),
                                       stop_nll=0.0, stop_margin=0.0)
    assert int(states.steps[0]) == 0
    assert torch.equal(states.z[0], states.h_init[0])
    assert int(states.steps[1]) > 0
