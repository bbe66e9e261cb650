"""How far towards z a state must get before the model prefers the new object (editing/reach.py)."""

import torch

from nse_engine.editing.prompts import tokenize_at_subject
from nse_engine.editing.reach import REACH_FRACTIONS, needed_reach, prefers_new_at, state_at
from nse_engine.facts import EditRequest
from nse_engine.model.architecture import find_edit_points
from nse_engine.model.loading import LoadedModel
from tiny import tiny_loaded

FACT = EditRequest("Paris", "The capital of {} is", "London", "France")


def _block_outputs(loaded: LoadedModel, layer: int, ids: list[int]) -> torch.Tensor:
    seen = []
    points = find_edit_points(loaded.model)
    handle = points.blocks[layer].register_forward_hook(
        lambda _m, _a, out: seen.append((out[0] if isinstance(out, tuple) else out).clone()))
    with torch.no_grad():
        loaded.model(input_ids=torch.tensor([ids]))
    handle.remove()
    return seen[0][0]  # (seq, hidden)


def test_the_state_is_put_at_the_subject_and_nowhere_else():
    loaded = tiny_loaded("smollm")
    points = find_edit_points(loaded.model)
    ids, at = tokenize_at_subject(loaded.tokenizer, "", FACT.prompt, FACT.subject)
    before = _block_outputs(loaded, 2, ids)
    state = torch.full((points.hidden_size,), 3.0)
    with state_at(points, 2, at, state):
        during = _block_outputs(loaded, 2, ids)
    after = _block_outputs(loaded, 2, ids)
    assert torch.equal(during[at], state)
    others = [i for i in range(len(ids)) if i != at]
    assert torch.equal(during[others], before[others])
    assert torch.equal(after, before)  # the hook is gone


def test_needed_reach_is_the_first_fraction_from_which_enough_facts_prefer_the_new_object():
    loaded = tiny_loaded("smollm")
    points = find_edit_points(loaded.model)
    ids, at = tokenize_at_subject(loaded.tokenizer, "", FACT.prompt, FACT.subject)
    h = _block_outputs(loaded, 2, ids)[at][None]  # (1, hidden)
    prefers = prefers_new_at(loaded, points, 2, FACT, h[0])
    flipped = EditRequest(FACT.subject, FACT.prompt, FACT.target_true, FACT.target_new)
    # z = h: the model prefers the same object at every fraction, so the answer is all or nothing
    preferring, other = (FACT, flipped) if prefers else (flipped, FACT)
    assert needed_reach(loaded, points, 2, [preferring], h, h, share=0.9) == REACH_FRACTIONS[0]
    assert needed_reach(loaded, points, 2, [other], h, h, share=0.9) == REACH_FRACTIONS[-1]
    # one fact of two preferring: enough for a share of 0.5, not for 0.9
    assert needed_reach(loaded, points, 2, [preferring, other], h.repeat(2, 1), h.repeat(2, 1), share=0.5) == REACH_FRACTIONS[0]
    assert needed_reach(loaded, points, 2, [preferring, other], h.repeat(2, 1), h.repeat(2, 1), share=0.9) == REACH_FRACTIONS[-1]
