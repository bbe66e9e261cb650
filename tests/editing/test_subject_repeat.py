"""The repeated-subject term of the target-state objective (`subject_repeat_weight`): a reply
that names the subject again after the fact must still spell it."""

import pytest
import torch

from nse_engine.editing.hparams import NseHyperParams
from nse_engine.editing.prompts import repeated_subject, tokenize_at_subject
from nse_engine.editing.reference import per_fact_target_state
from nse_engine.editing.target_state import compute_target_states
from nse_engine.facts import EditRequest
from nse_engine.model.architecture import find_edit_points
from nse_engine.progress import JobControl
from tiny import make_model, make_tokenizer, spelled_nll

REQUESTS = [
    EditRequest("Danielle Darrieux", "{} is a native speaker of", "English", "French"),
    EditRequest("Toko Yasuda", "{} plays the", "piano", "guitar"),
]
HP = NseHyperParams.flat(layers=(1, 2), v_lr=0.5, v_num_grad_steps=8, alpha=0.0,
                         upper_bound=1e9, mom2_update_weight=1.0, neuron_threshold=0.8, target_stop_nll=0.0)


def test_the_repeat_is_the_subject_named_again_and_the_delta_sits_on_its_first_mention():
    tok = make_tokenizer()
    req = REQUESTS[0]
    ids, last, repeat = repeated_subject(tok, req.subject)
    first_ids, first_last = tokenize_at_subject(tok, "", "{}.", req.subject)
    assert ids[: len(first_ids)] == first_ids and last == first_last
    assert tok.decode([ids[i] for i in repeat]).strip() == req.subject
    assert repeat[-1] == len(ids) - 1


def _repeat_nll(model, tok, points, req: EditRequest, z: torch.Tensor) -> float:
    """Mean NLL of the repeated subject's tokens after its first, with the last edited layer's
    output set to z at the first mention."""
    ids, last, repeat = repeated_subject(tok, req.subject)
    return spelled_nll(model, points, HP.layers[-1], ids, [last], z, repeat[1:])


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_the_term_keeps_the_repeat_spelled_and_matches_the_plain_loop(kind):
    tok = make_tokenizer()
    model = make_model(kind, tok)
    points = find_edit_points(model)
    prefixes = ["I think that. "]
    weighted = HP.with_overrides(subject_repeat_weight=5.0)
    with torch.enable_grad():
        without = compute_target_states(model, tok, points, REQUESTS, HP, prefixes, JobControl(), stop_nll=0.0)
        with_term = compute_target_states(model, tok, points, REQUESTS, weighted, prefixes, JobControl(), stop_nll=0.0)
        plain = torch.stack([per_fact_target_state(model, tok, points, r, weighted, prefixes, 0.0) for r in REQUESTS])
    assert torch.allclose(with_term.z, plain, atol=1e-3, rtol=1e-3)
    for i, req in enumerate(REQUESTS):
        assert _repeat_nll(model, tok, points, req, with_term.z[i]) < _repeat_nll(model, tok, points, req, without.z[i])
