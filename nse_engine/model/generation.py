"""Greedy generation, batched: what the model writes, the same way for evaluation, chat and the app.

Sequences are left-padded so every row ends at the same position and generation continues all of
them at once; plain greedy decoding is forced whatever the model's generation config suggests,
so the same weights always write the same text.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from nse_engine.model.tokens import encode_prompt, greedy_kwargs, pad_id

OnBatch = Callable[[int], None]  # called with the number of items a finished batch covered
GENERATION_SLACK = 3  # tokens generated beyond an answer's length: room for an article or punctuation


def greedy_continuations(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    max_new_tokens: int | Sequence[int],
    batch_size: int = 32,
    on_batch: OnBatch | None = None,
) -> list[str]:
    """Greedy continuation of each prompt (completion, no chat template), batched with left padding.

    Each prompt starts with exactly one BOS after its padding; `max_new_tokens` may differ per prompt.
    """
    encoded = [encode_prompt(tokenizer, p) for p in prompts]
    return greedy_continuations_of_ids(model, tokenizer, encoded, max_new_tokens, batch_size, on_batch)


@torch.no_grad()
def greedy_continuations_of_ids(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    encoded: Sequence[list[int]],
    max_new_tokens: int | Sequence[int],
    batch_size: int = 32,
    on_batch: OnBatch | None = None,
) -> list[str]:
    """Greedy continuation of each token sequence (already encoded: a prompt, or a chat
    conversation through its template), batched with left padding."""
    limits = [max_new_tokens] * len(encoded) if isinstance(max_new_tokens, int) else list(max_new_tokens)
    assert len(limits) == len(encoded), "one max_new_tokens per prompt"
    order = sorted(range(len(encoded)), key=lambda i: (-len(encoded[i]), -limits[i]))
    pad = pad_id(tokenizer)
    texts: list[str] = [""] * len(encoded)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        ids, mask = left_pad([encoded[i] for i in chunk], pad)  # (batch, seq)
        out = model.generate(
            input_ids=ids.to(model.device),
            attention_mask=mask.to(model.device),
            **greedy_kwargs(max(limits[i] for i in chunk), pad),
        )  # (batch, seq + new)
        new = out[:, ids.shape[1] :]  # (batch, new)
        for row, i in enumerate(chunk):
            texts[i] = tokenizer.decode(new[row, : limits[i]], skip_special_tokens=True)
        if on_batch is not None:
            on_batch(len(chunk))
    return texts


def left_pad(sequences: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack sequences into (batch, max_len) ids and mask, padding on the left for generation."""
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, width - len(seq) :] = torch.tensor(seq, dtype=torch.long)
        mask[row, width - len(seq) :] = 1
    return ids, mask
