"""Turning edit requests into token sequences: subject positions, context prefixes, targets."""

from __future__ import annotations

from typing import NamedTuple

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from nse_engine.facts import EditRequest
from nse_engine.model.tokens import bos_token_id, encode_prompt

_PREFIX_STARTERS = ("The", "Therefore", "Because", "I", "You", "In", "It", "When", "We", "This")


def subject_span(
    tokenizer: PreTrainedTokenizerBase, prefix: str, template: str, subject: str
) -> tuple[list[int], int, int]:
    """Token ids of `prefix + template.format(subject)` (BOS first) and the indices of the
    subject's first and last tokens. With a slow tokenizer the first index is counted from the
    text before the subject, tokenised on its own."""
    if "{}" not in template:
        raise ValueError(f"prompt {template!r} has no '{{}}' where the subject goes")
    text = prefix + template.format(subject)
    subject_start = len(prefix) + template.index("{}")
    subject_end = subject_start + len(subject)
    if tokenizer.is_fast:
        ids, offsets = _fast_encoding(tokenizer, text)
        inside = _tokens_within(offsets, subject_start, subject_end)
        return ids, inside[0], inside[-1]
    ids = encode_prompt(tokenizer, text)
    last = len(encode_prompt(tokenizer, text[:subject_end])) - 1
    return ids, min(len(encode_prompt(tokenizer, text[:subject_start].rstrip())), last), last


def tokenize_at_subject(
    tokenizer: PreTrainedTokenizerBase, prefix: str, template: str, subject: str
) -> tuple[list[int], int]:
    """Token ids of `prefix + template.format(subject)` (BOS first) and the index of the
    subject's last token, where NSE reads keys and writes its delta."""
    ids, _, last = subject_span(tokenizer, prefix, template, subject)
    return ids, last


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


def _fast_encoding(tokenizer: PreTrainedTokenizerBase, text: str) -> tuple[list[int], list[tuple[int, int]]]:
    """Token ids of `text` with BOS first, and each token's character span."""
    enc = tokenizer(text, add_special_tokens=True, return_offsets_mapping=True)
    ids, offsets = list(enc["input_ids"]), list(enc["offset_mapping"])
    bos = bos_token_id(tokenizer)
    if not ids or ids[0] != bos:
        ids, offsets = [bos, *ids], [(0, 0), *offsets]
    return ids, offsets


def _tokens_within(offsets: list[tuple[int, int]], start: int, end: int) -> list[int]:
    return [i for i, (a, b) in enumerate(offsets) if b > a and a < end and b > start]


def repeated_subject(tokenizer: PreTrainedTokenizerBase, subject: str) -> tuple[list[int], int, list[int]] | None:
    """Token ids of "{subject}. {subject}" (BOS first), the index of the first mention's last
    token (where the delta goes) and the token indices of the repeat: the subject named again,
    as a reply names it after a question about it. None with a slow tokenizer (no offsets to
    find the repeat by)."""
    if not tokenizer.is_fast:
        return None
    text = f"{subject}. {subject}"
    ids, offsets = _fast_encoding(tokenizer, text)
    first = _tokens_within(offsets, 0, len(subject))
    repeat = _tokens_within(offsets, len(text) - len(subject), len(text))
    return ids, first[-1], repeat


def chat_question(request: EditRequest) -> str:
    """The user turn of a fact's chat row: its first question, else its prompt with the subject in
    it (nothing specific to a relation or a data set; evaluation asks in other words)."""
    return request.questions[0] if request.questions else request.text


class ChatTurn(NamedTuple):
    """A fact as a chat turn, up to where the reply states the new object."""

    ids: list[int]  # BOS first: the question in a user turn, the assistant header, the reply restating the prompt
    subject_ends: list[int]  # the subject's last token at each place it is written (question, reply)
    reply_subject: list[int]  # the tokens of the subject as the reply writes it


def chat_conversation(tokenizer: PreTrainedTokenizerBase, request: EditRequest) -> ChatTurn | None:
    """A fact as a chat turn: its question in a user turn, the assistant header and a reply
    restating the prompt, up to where the new object goes; the delta goes and keys are read at
    each `subject_ends`. None for a model without a chat template, or a slow tokenizer (no
    offsets to find the subject by)."""
    if not getattr(tokenizer, "chat_template", None) or not tokenizer.is_fast:
        return None
    head = tokenizer.apply_chat_template([{"role": "user", "content": chat_question(request)}],
                                         add_generation_prompt=True, tokenize=False)
    text = head + request.text
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = list(enc["input_ids"]), list(enc["offset_mapping"])
    bos = bos_token_id(tokenizer)
    if not ids or ids[0] != bos:  # templates without a BOS of their own, as chat.conversation_ids
        ids, offsets = [bos, *ids], [(0, 0), *offsets]
    ends: list[int] = []
    written: list[int] = []
    start = text.find(request.subject)
    while start >= 0:
        written = _tokens_within(offsets, start, start + len(request.subject))
        if written and written[-1] not in ends:
            ends.append(written[-1])
        start = text.find(request.subject, start + len(request.subject))
    return ChatTurn(ids, ends, written)
