"""Tokenising prompts and targets the same way everywhere: editing, evaluation, statistics, chat.

Every sequence starts with the same start token (`bos_token_id`: BOS, else EOS), prepended when
the tokenizer does not add one itself (SmolLM2's does not). Position 0 is an attention sink
with an outlier hidden state, so a subject placed there could never be edited; and the keys
the statistics average must be read with the same start token as the keys of an edit.
"""

from __future__ import annotations

import torch
from transformers import PreTrainedTokenizerBase


def bos_token_id(tokenizer: PreTrainedTokenizerBase) -> int:
    """The id put in front of every sequence: BOS, else EOS (GPT-2 style tokenizers)."""
    token_id = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    if token_id is None:
        raise ValueError("the tokenizer has neither a BOS nor an EOS token to start sequences with")
    return int(token_id)


def pad_id(tokenizer: PreTrainedTokenizerBase) -> int:
    """The id padded positions get (they are masked out): the pad token, else the start token."""
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else bos_token_id(tokenizer)


def greedy_kwargs(max_new_tokens: int, pad: int) -> dict[str, object]:
    """generate() arguments for plain greedy decoding, whatever the model's generation config
    suggests (sampling, repetition penalties): the same weights always write the same text."""
    return {
        "max_new_tokens": max_new_tokens,
        "do_sample": False,
        "num_beams": 1,
        "repetition_penalty": 1.0,
        "pad_token_id": pad,
    }


def encode_prompt(tokenizer: PreTrainedTokenizerBase, text: str) -> list[int]:
    """Token ids of `text`, starting with exactly one BOS token."""
    ids = tokenizer(text, add_special_tokens=True)["input_ids"]
    bos = bos_token_id(tokenizer)
    if not ids or ids[0] != bos:
        ids = [bos, *ids]
    return ids


def encode_target(tokenizer: PreTrainedTokenizerBase, target: str) -> list[int]:
    """Token ids of a target answer as it continues a prompt (with its leading space)."""
    ids = tokenizer(" " + target.strip(), add_special_tokens=False)["input_ids"]
    if not ids:
        raise ValueError(f"target {target!r} encodes to no tokens")
    return ids


def right_pad(sequences: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack sequences into (batch, max_len) ids and attention mask, padding on the right.

    Right padding keeps every real token at its natural position, so positions and causal
    attention are the same as for the unpadded sequence.
    """
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
    return ids, mask
