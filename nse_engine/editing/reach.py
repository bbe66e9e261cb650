"""How far towards its target state z a fact's hidden state must get before the model prefers the new object.

A round stops editing a fact once ‖z − h‖ < alpha. Whether "within alpha of z" still means "the
model prefers the new object" depends on the model: on SmolLM2 half-way to z is enough, on
Gemma 3 270M a fact needs 90 % of the way (docs/settings.md). This measures it: put
h + t · (z − h) at the subject's last token of the bare prompt (at the last edited layer) and
compare the new object's teacher-forced mean log-probability with the true one's, as efficacy does.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Sequence

import torch

from nse_engine.editing.prompts import tokenize_at_subject
from nse_engine.evaluation.scoring import score_targets
from nse_engine.facts import EditRequest
from nse_engine.model.architecture import EditPoints
from nse_engine.model.loading import LoadedModel

REACH_FRACTIONS = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


@contextmanager
def state_at(points: EditPoints, layer: int, position: int, state: torch.Tensor) -> Iterator[None]:
    """While open, the first forward pass has `state` as the block output of `layer` at
    `position` of its first sequence: the prompt's pass, not the passes that continue it from
    the cache (scoring's target tokens, generate()'s later steps)."""
    done = False

    def hook(_module, _args, output):
        nonlocal done
        if not done:
            hidden = output[0] if isinstance(output, tuple) else output
            hidden[0, position] = state.to(hidden.dtype)
            done = True
        return output

    handle = points.blocks[layer].register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def prefers_new_at(loaded: LoadedModel, points: EditPoints, layer: int, req: EditRequest, state: torch.Tensor) -> bool:
    """Does the bare prompt prefer target_new over target_true with `state` at the subject?"""
    _, subject_at = tokenize_at_subject(loaded.tokenizer, "", req.prompt, req.subject)
    with state_at(points, layer, subject_at, state):
        new, true = score_targets(loaded.model, loaded.tokenizer, [(req.text, req.target_new), (req.text, req.target_true)])
    return new.mean_logprob > true.mean_logprob


def needed_reach(
    loaded: LoadedModel,
    points: EditPoints,
    layer: int,
    requests: Sequence[EditRequest],
    z: torch.Tensor,  # (n, hidden) target states
    h: torch.Tensor,  # (n, hidden) original states at `layer`
    share: float,
) -> float:
    """The smallest t of REACH_FRACTIONS at which at least `share` of `requests` prefer the new
    object with h + t · (z − h) at the subject, and so at every larger t measured."""
    needed = REACH_FRACTIONS[-1]
    for t in reversed(REACH_FRACTIONS):
        preferring = sum(prefers_new_at(loaded, points, layer, r, h[i] + t * (z[i] - h[i])) for i, r in enumerate(requests))
        if preferring < share * len(requests):
            break
        needed = t
    return needed
