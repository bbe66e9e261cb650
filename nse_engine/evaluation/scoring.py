"""Teacher-forced scoring of (prompt, target) pairs (greedy generation is in model/generation.py).

Scoring runs each distinct prompt once (`BOS prompt`, right-padded) and continues every target
of that prompt from the prompt's cached keys and values. The LM head is applied only at the
positions that predict target tokens: a hook on the head gathers those hidden states, so the
vocabulary projection costs (target tokens, vocab) instead of (batch, seq, vocab), and whatever
a model does to its logits after the head (Gemma's soft-capping, Cohere's scale) still happens.
Everything here is compute-only and deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass
from contextlib import contextmanager
from typing import Iterator, Sequence

import torch
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from nse_engine.model.generation import OnBatch
from nse_engine.model.tokens import encode_prompt, encode_target, pad_id, right_pad


@dataclass(frozen=True)
class TargetScore:
    """How much the model expects `target` after `prompt`, under teacher forcing."""

    mean_logprob: float  # mean over target tokens of log p(token | prompt, earlier target tokens)
    top1: float  # share of target tokens that are the argmax at their position
    n_tokens: int

    @property
    def all_top1(self) -> bool:
        return self.top1 == 1.0


@torch.no_grad()
def score_targets(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    pairs: Sequence[tuple[str, str]],
    batch_size: int = 32,
    on_batch: OnBatch | None = None,
) -> list[TargetScore]:
    """Score every (prompt, target) pair, in batches of at most `batch_size` distinct prompts.

    Each distinct prompt runs once; all its targets continue from its cached keys and values
    (CounterFact asks two or more targets of every prompt, so this halves the work).
    Identical pairs are computed once.
    """
    targets_of: dict[str, list[str]] = {}
    for prompt, target in dict.fromkeys(pairs):
        targets_of.setdefault(prompt, []).append(target)
    encoded = {p: encode_prompt(tokenizer, p) for p in targets_of}
    # Longest first, so each batch pads little and the first batch shows the peak memory.
    prompts = sorted(targets_of, key=lambda p: -len(encoded[p]))
    found: dict[tuple[str, str], TargetScore] = {}
    for start in range(0, len(prompts), batch_size):
        chunk = prompts[start : start + batch_size]
        scores = _score_batch(
            model,
            [encoded[p] for p in chunk],
            [[encode_target(tokenizer, t) for t in targets_of[p]] for p in chunk],
            pad_id(tokenizer),
        )
        for prompt, prompt_scores in zip(chunk, scores):
            found.update({(prompt, t): s for t, s in zip(targets_of[prompt], prompt_scores)})
        if on_batch is not None:
            on_batch(sum(len(targets_of[p]) for p in chunk))
    return [found[pair] for pair in pairs]


def _score_batch(
    model: PreTrainedModel, prompts: list[list[int]], targets: list[list[list[int]]], pad: int
) -> list[list[TargetScore]]:
    """Scores of targets[b][k] after prompts[b]: one pass over the prompts, one over the targets."""
    device = model.device
    ids, mask = right_pad(prompts, pad)  # (batch, width)
    ids, mask = ids.to(device), mask.to(device)
    lengths = torch.tensor([len(p) for p in prompts], device=device)  # (batch,)
    # The logits at position p predict token p + 1: the last prompt position predicts target token 0.
    with head_only_at(model, torch.arange(len(prompts), device=device), lengths - 1):
        out = model(input_ids=ids, attention_mask=mask, use_cache=True)
    assert out.logits.dim() == 2, f"{type(model).__name__} reshapes its head output; cannot gather positions"
    first = torch.log_softmax(out.logits.float(), dim=-1)  # (batch, vocab)

    owner = [b for b, ts in enumerate(targets) for _ in ts]  # prompt of each pair
    flat = [t for ts in targets for t in ts]  # (pairs,) token lists
    first_ids = torch.tensor([t[0] for t in flat], device=device)  # (pairs,)
    logprobs = [first[owner, first_ids]]  # (pairs,)
    hits = [first.argmax(dim=-1)[owner] == first_ids]  # (pairs,)
    token_pair = [torch.arange(len(flat), device=device)]  # which pair each scored token belongs to

    longer = [i for i, t in enumerate(flat) if len(t) > 1]
    if longer:
        # Feed target tokens 0..T-2 after the cached prompt; their logits predict tokens 1..T-1.
        select = torch.tensor([owner[i] for i in longer], device=device)  # (m,)
        cache = out.cache
        cache.reorder_cache(select)  # (batch, ...) -> (m, ...): one copy of the prompt per pair
        cont_ids, cont_mask = right_pad([flat[i][:-1] for i in longer], pad)  # (m, c)
        cont_ids, cont_mask = cont_ids.to(device), cont_mask.to(device)
        positions = lengths[select][:, None] + torch.arange(cont_ids.shape[1], device=device)  # (m, c)
        rows = torch.tensor([r for r, i in enumerate(longer) for _ in flat[i][1:]], device=device)  # (n,)
        cols = torch.tensor([j for i in longer for j in range(len(flat[i]) - 1)], device=device)  # (n,)
        wanted = torch.tensor([tok for i in longer for tok in flat[i][1:]], device=device)  # (n,)
        with head_only_at(model, rows, cols):
            logits = model(
                input_ids=cont_ids,
                attention_mask=torch.cat([mask[select], cont_mask], dim=1),  # (m, width + c)
                position_ids=positions,
                cache=cache,
                use_cache=True,
            ).logits.float()  # (n, vocab)
        logprobs.append(torch.log_softmax(logits, dim=-1).gather(1, wanted[:, None])[:, 0])  # (n,)
        hits.append(logits.argmax(dim=-1) == wanted)  # (n,)
        token_pair.append(torch.tensor([i for i in longer for _ in flat[i][1:]], device=device))

    pair_of = torch.cat(token_pair)  # (tokens,)
    counts = torch.bincount(pair_of, minlength=len(flat)).float()  # (pairs,)
    mean_logprob = torch.zeros(len(flat), device=device).index_add_(0, pair_of, torch.cat(logprobs)) / counts
    top1 = torch.zeros(len(flat), device=device).index_add_(0, pair_of, torch.cat(hits).float()) / counts
    scores = [
        TargetScore(lp, t1, int(n)) for lp, t1, n in zip(mean_logprob.tolist(), top1.tolist(), counts.tolist())
    ]
    it = iter(scores)
    return [[next(it) for _ in ts] for ts in targets]


@contextmanager
def head_only_at(model: PreTrainedModel, rows: torch.Tensor, cols: torch.Tensor) -> Iterator[None]:
    """Within this block the LM head sees only the hidden states at (rows[i], cols[i]), so the
    model returns logits of shape (n, vocab); post-head steps such as soft-capping still apply."""
    head: nn.Module = model.get_output_embeddings()

    def gather(_module: nn.Module, args: tuple) -> tuple:
        return (args[0][rows, cols],)  # (batch, seq, hidden) -> (n, hidden)

    handle = head.register_forward_pre_hook(gather)
    try:
        yield
    finally:
        handle.remove()
