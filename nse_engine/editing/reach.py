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
from nse_engine.facts import EditRequest
from nse_engine.model.architecture import EditPoints
from nse_engine.model.loading import LoadedModel
from nse_engine.model.tokens import encode_target

REACH_FRACTIONS = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


@contextmanager
def state_at(points: EditPoints, layer: int, position: int, state: torch.Tensor) -> Iterator[None]:
    """While open, the block output of `layer` at `position` of a one-sequence forward is `state`
    (a pass over the whole prompt only: generate()'s later one-token steps are left alone)."""

    def hook(_module, _args, output):
        hidden = output[0] if isinstance(output, tuple) else output
        if hidden.shape[1] > position:
            hidden[0, position] = state.to(hidden.dtype)
        return output

    handle = points.blocks[layer].register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


@torch.no_grad()
def mean_logprob(loaded: LoadedModel, prompt_ids: list[int], target: str) -> float:
    """Teacher-forced mean log p of `target`'s tokens after `prompt_ids`, one full forward."""
    target_ids = encode_target(loaded.tokenizer, target)
    ids = torch.tensor([prompt_ids + target_ids], device=loaded.device)
    logits = loaded.model(input_ids=ids).logits[0].float()  # (seq, vocab)
    logp = torch.log_softmax(logits[len(prompt_ids) - 1 : -1], dim=-1)  # (target, vocab)
    return float(logp.gather(1, torch.tensor(target_ids, device=logp.device)[:, None]).mean())


def prefers_new_at(loaded: LoadedModel, points: EditPoints, layer: int, req: EditRequest, state: torch.Tensor) -> bool:
    """Does the bare prompt prefer target_new over target_true with `state` at the subject?"""
    prompt_ids, subject_at = tokenize_at_subject(loaded.tokenizer, "", req.prompt, req.subject)
    with state_at(points, layer, subject_at, state):
        return mean_logprob(loaded, prompt_ids, req.target_new) > mean_logprob(loaded, prompt_ids, req.target_true)


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
    preferred = [
        sum(prefers_new_at(loaded, points, layer, r, h[i] + t * (z[i] - h[i])) for i, r in enumerate(requests))
        / len(requests)
        for t in REACH_FRACTIONS
    ]
    needed = REACH_FRACTIONS[-1]
    for t, p in reversed(list(zip(REACH_FRACTIONS, preferred))):
        if p < share:
            break
        needed = t
    return needed
