"""Chatting with the (edited) model: the Chat screen's streamed replies and quick fact questions.

Instruct models get their chat template; base models continue the user's text. Replies are
greedy unless a temperature is asked for, so the same weights always give the same answer and
"compare with the original model" shows only what the edits changed. Nothing here changes the model.
"""

from __future__ import annotations

import threading
from typing import Iterator, Mapping, Sequence

import torch
from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

from nse_engine.facts import EditRequest
from nse_engine.model.generation import greedy_continuations_of_ids
from nse_engine.model.loading import LoadedModel
from nse_engine.model.tokens import bos_token_id, encode_prompt, greedy_kwargs, pad_id

Message = Mapping[str, str]  # {"role": "user" | "assistant" | "system", "content": "..."}
Conversation = str | Sequence[Message]

# Seconds the streaming side waits for the next piece of text before giving up on generate().
STREAM_TIMEOUT_S = 120.0
# Tokens of a reply to a fact's question (evaluation's chat answer, the round's chat check);
# 24 covers "The capital of X is Y." in SmolLM2's style.
CHAT_ANSWER_TOKENS = 24


class StopOnEvent(StoppingCriteria):
    """Ends generation at the next token once `event` is set (the Stop button)."""

    def __init__(self, *events: threading.Event) -> None:
        self.events = events

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor | None, **kwargs) -> torch.Tensor:
        stop = any(e.is_set() for e in self.events)
        return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)


def is_chat_model(loaded: LoadedModel) -> bool:
    """Does the tokenizer carry a chat template (an instruct model)?"""
    return bool(getattr(loaded.tokenizer, "chat_template", None))


def conversation_ids(loaded: LoadedModel, conversation: Conversation) -> list[int]:
    """Token ids of a conversation as the model should continue it, starting with exactly one BOS:
    through the chat template for instruct models, the last user message as plain text otherwise."""
    tokenizer = loaded.tokenizer
    messages = [{"role": "user", "content": conversation}] if isinstance(conversation, str) else list(conversation)
    if is_chat_model(loaded):
        enc = tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        ids = enc["input_ids"][0].tolist()
        bos = bos_token_id(tokenizer)
        if ids[0] != bos:  # templates without a BOS of their own (Qwen2) still follow our convention
            ids = [bos, *ids]
        return ids
    last_user = [m["content"] for m in messages if m["role"] == "user"]
    return encode_prompt(tokenizer, last_user[-1] if last_user else "")


def build_inputs(loaded: LoadedModel, conversation: Conversation) -> dict[str, torch.Tensor]:
    """input_ids and attention_mask (1, seq) for generate()."""
    input_ids = torch.tensor([conversation_ids(loaded, conversation)], dtype=torch.long, device=loaded.device)  # (1, seq)
    return {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}


def replies(loaded: LoadedModel, questions: Sequence[str], max_new_tokens: int, batch_size: int = 32) -> list[str]:
    """Greedy replies to many one-message conversations at once (evaluation; the Chat screen streams)."""
    encoded = [conversation_ids(loaded, q) for q in questions]
    return greedy_continuations_of_ids(loaded.model, loaded.tokenizer, encoded, max_new_tokens, batch_size)


def subject_question(subject: str) -> str:
    """The open question whose reply shows whether the model still spells the subject."""
    return f"Tell me about {subject}."


def _generate_kwargs(loaded: LoadedModel, max_new_tokens: int, temperature: float) -> dict[str, object]:
    kwargs = greedy_kwargs(max_new_tokens, pad_id(loaded.tokenizer))
    if temperature > 0:
        kwargs.update(do_sample=True, temperature=temperature)
    return kwargs


def stream_reply(
    loaded: LoadedModel,
    conversation: Conversation,
    max_new_tokens: int = 256,
    stop_event: threading.Event | None = None,
    temperature: float = 0.0,
    timeout_s: float = STREAM_TIMEOUT_S,
) -> Iterator[str]:
    """Yield the reply's text piece by piece as it is generated; setting `stop_event` ends it early.

    generate() runs in a helper thread and this generator waits on it, so the model is still used
    by one job at a time. Closing the generator early also stops generation.
    """
    streamer = TextIteratorStreamer(loaded.tokenizer, skip_prompt=True, timeout=timeout_s, skip_special_tokens=True)
    abandoned = threading.Event()
    stops = StopOnEvent(abandoned, *([stop_event] if stop_event is not None else []))
    errors: list[BaseException] = []

    def run() -> None:
        try:
            loaded.model.generate(
                **build_inputs(loaded, conversation),
                streamer=streamer,
                stopping_criteria=StoppingCriteriaList([stops]),
                **_generate_kwargs(loaded, max_new_tokens, temperature),
            )
        except BaseException as exc:  # re-raised on the caller's thread below
            errors.append(exc)
            streamer.end()

    worker = threading.Thread(target=run, name="nse-chat-generate", daemon=True)
    worker.start()
    try:
        for piece in streamer:
            if piece:
                yield piece
    finally:
        abandoned.set()
        worker.join()
    if errors:
        raise errors[0]


def prompt_question(request: EditRequest, loaded: LoadedModel) -> str:
    """A fact's chat question built from its prompt alone, the same for every fact of a data set
    (evaluation's chat answer asks it, so benchmark figures stay comparable).

    Base models simply continue the prompt. For instruct models "Complete the sentence: ..." was
    measured best on SmolLM2-135M-Instruct: 34 of 40 dev facts answered with the true object
    within 24 greedy tokens, against 31 for the bare prompt and 30 for a fill-in-the-blank.
    """
    if not is_chat_model(loaded):
        return request.text
    return f"Complete the sentence: {request.text}"


def fact_question(request: EditRequest, loaded: LoadedModel) -> str:
    """What the Chat screen's quick button and the round's chat check ask about a fact: its first
    question when it has questions (what its user would ask), else `prompt_question`. A base model
    has no chat and continues the prompt either way."""
    if request.questions and is_chat_model(loaded):
        return request.questions[0]
    return prompt_question(request, loaded)
