"""Turning edit requests into token sequences: subject positions, context prefixes, targets."""

from __future__ import annotations

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from nse_engine.model.tokens import bos_token_id, encode_prompt

_PREFIX_STARTERS = ("The", "Therefore", "Because", "I", "You", "In", "It", "When", "We", "This")


def tokenize_at_subject(
    tokenizer: PreTrainedTokenizerBase, prefix: str, template: str, subject: str
) -> tuple[list[int], int]:
    """Token ids of `prefix + template.format(subject)` (BOS first) and the index of the
    subject's last token, where NSE reads keys and writes its delta."""
    if "{}" not in template:
        raise ValueError(f"prompt {template!r} has no '{{}}' where the subject goes")
    text = prefix + template.format(subject)
    subject_end = len(prefix) + template.index("{}") + len(subject)
    bos = bos_token_id(tokenizer)
    if tokenizer.is_fast:
        enc = tokenizer(text, add_special_tokens=True, return_offsets_mapping=True)
        ids, offsets = list(enc["input_ids"]), list(enc["offset_mapping"])
        if not ids or ids[0] != bos:
            ids, offsets = [bos, *ids], [(0, 0), *offsets]
        last = max(i for i, (start, end) in enumerate(offsets) if end > start and start < subject_end)
        return ids, last
    ids = encode_prompt(tokenizer, text)
    return ids, len(encode_prompt(tokenizer, text[:subject_end])) - 1


@torch.no_grad()
def generate_context_prefixes(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, count: int, n_tokens: int
) -> list[str]:
    """Short, deterministic (greedy) texts put in front of prompts so edits generalise across
    contexts. Generated from the model itself, like MEMIT's, but greedy so reruns agree."""
    prefixes = []
    device = next(model.parameters()).device
    for starter in _PREFIX_STARTERS[:count]:
        ids = torch.tensor([encode_prompt(tokenizer, starter)], device=device)
        out = model.generate(
            input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=n_tokens,
            do_sample=False, pad_token_id=tokenizer.pad_token_id,
        )
        text = tokenizer.decode(out[0, 1:], skip_special_tokens=True)
        text = " ".join(text.replace("{", " ").replace("}", " ").split())
        prefixes.append(text.rstrip(".") + ". ")
    return prefixes
