"""Chat replies: streaming equals plain greedy decoding, Stop ends early, templates or plain text."""

import dataclasses
import threading

import pytest
import torch

from nse_engine.chat import build_inputs, fact_question, is_chat_model, prompt_question, stream_reply
from nse_engine.facts import EditRequest
from nse_engine.model.loading import LoadedModel
from nse_engine.model.tokens import bos_token_id, encode_prompt
from tiny import CHAT_TEMPLATE, tiny_loaded


def tiny(kind: str = "llama", chat: bool = False) -> LoadedModel:
    return tiny_loaded(kind, chat_template=CHAT_TEMPLATE if chat else None)


def reply(loaded: LoadedModel, conversation, max_new_tokens: int, stop_event: threading.Event | None = None) -> str:
    """The whole streamed reply."""
    return "".join(stream_reply(loaded, conversation, max_new_tokens=max_new_tokens, stop_event=stop_event))


def greedy_reference(loaded: LoadedModel, ids: list[int], n: int) -> str:
    """Plain greedy decoding, one token at a time from full forwards: what a reply must match."""
    seq = list(ids)
    eos = loaded.tokenizer.eos_token_id
    for _ in range(n):
        with torch.no_grad():
            nxt = int(loaded.model(torch.tensor([seq])).logits[0, -1].argmax())
        seq.append(nxt)
        if nxt == eos:
            break
    return loaded.tokenizer.decode(seq[len(ids):], skip_special_tokens=True)


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_plain_completion_without_chat_template(kind):
    loaded = tiny(kind)
    assert not is_chat_model(loaded)
    inputs = build_inputs(loaded, "The capital of France is")
    assert inputs["input_ids"][0].tolist() == encode_prompt(loaded.tokenizer, "The capital of France is")
    conversation = [{"role": "user", "content": "Rome is"}, {"role": "assistant", "content": "old"},
                    {"role": "user", "content": "The capital of France is"}]
    assert torch.equal(build_inputs(loaded, conversation)["input_ids"], inputs["input_ids"])
    assert reply(loaded, "The capital of France is", max_new_tokens=6) == greedy_reference(
        loaded, encode_prompt(loaded.tokenizer, "The capital of France is"), 6
    )


def test_chat_template_is_used_and_starts_with_one_bos():
    loaded = tiny(chat=True)
    assert is_chat_model(loaded)
    ids = build_inputs(loaded, "Where is Paris?")["input_ids"][0].tolist()
    bos = bos_token_id(loaded.tokenizer)
    assert ids[0] == bos and ids[1] != bos
    assert loaded.tokenizer.decode(ids) == "<|bos|>user: Where is Paris?\n<|bos|>assistant:"


def test_template_without_bos_gets_one():
    loaded = tiny(chat=True)
    loaded.tokenizer.chat_template = CHAT_TEMPLATE.replace("<|bos|>", "")
    ids = build_inputs(loaded, "Hi")["input_ids"][0].tolist()
    assert ids[0] == bos_token_id(loaded.tokenizer)
    assert ids.count(ids[0]) == 1


@pytest.mark.parametrize("chat", [False, True])
def test_streaming_yields_the_greedy_text_piece_by_piece(chat):
    loaded = tiny("smollm", chat=chat)  # this seed writes " is is is ...": one piece per word
    pieces = list(stream_reply(loaded, "The capital of France is", max_new_tokens=20))
    assert len(pieces) > 1 or chat
    ids = build_inputs(loaded, "The capital of France is")["input_ids"][0].tolist()
    assert "".join(pieces) == greedy_reference(loaded, ids, 20)


def test_greedy_reply_is_reproducible():
    loaded = tiny(chat=True)
    assert reply(loaded, "Tell me about Rome", 12) == reply(loaded, "Tell me about Rome", 12)


def test_stop_event_ends_generation_early():
    loaded = tiny("smollm")
    full = reply(loaded, "The capital of France is", max_new_tokens=40)
    stop = threading.Event()
    pieces = []
    for piece in stream_reply(loaded, "The capital of France is", max_new_tokens=40, stop_event=stop):
        pieces.append(piece)
        if len(pieces) == 2:
            stop.set()
    n_stopped = len(loaded.tokenizer("".join(pieces))["input_ids"])
    assert n_stopped < len(loaded.tokenizer(full)["input_ids"])
    assert full.startswith("".join(pieces))


def test_stop_set_before_start_gives_at_most_one_token():
    loaded = tiny()
    stop = threading.Event()
    stop.set()
    text = reply(loaded, "I think", max_new_tokens=40, stop_event=stop)
    assert len(loaded.tokenizer(text, add_special_tokens=False)["input_ids"]) <= 1


def test_closing_the_stream_early_stops_the_generate_thread():
    loaded = tiny()
    stream = stream_reply(loaded, "I think", max_new_tokens=200)
    next(stream)
    stream.close()  # joins the helper thread; it must not run on to 200 tokens in the background
    assert not [t for t in threading.enumerate() if t.name == "nse-chat-generate"]


def test_errors_in_generate_reach_the_caller():
    loaded = tiny()
    with pytest.raises(ValueError):
        list(stream_reply(loaded, "I think", max_new_tokens=-5))


def test_fact_question():
    request = EditRequest("France", "The capital of {} is", "Rome", "Paris")
    assert fact_question(request, tiny()) == "The capital of France is"
    question = fact_question(request, tiny(chat=True))
    assert "The capital of France is" in question


def test_a_facts_own_question_is_asked_in_chat_and_evaluation_keeps_the_prompts():
    """The Chat screen and the round ask what the fact's user would ask; a base model has no chat and
    continues the prompt; evaluation's chat answer asks the question built from the prompt, for every fact."""
    plain = EditRequest("France", "The capital of {} is", "Rome", "Paris")
    asked = dataclasses.replace(plain, questions=("Which city is the capital of France?", "What is France's capital?"))
    chat, base = tiny(chat=True), tiny()
    assert fact_question(asked, chat) == "Which city is the capital of France?"
    assert fact_question(asked, base) == "The capital of France is"
    assert prompt_question(asked, chat) == prompt_question(plain, chat) == fact_question(plain, chat)
