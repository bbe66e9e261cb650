"""What the model writes: the chat-level checks against continuations computed by hand."""

import pytest
import torch

from nse_engine.chat import conversation_ids, fact_question, subject_question
from nse_engine.evaluation import evaluate
from nse_engine.answers import mentions, says
from nse_engine.evaluation.written import written_scores
from nse_engine.facts import EditRequest, NeighborhoodCheck
from nse_engine.model.loading import LoadedModel
from nse_engine.model.tokens import encode_prompt
from tiny import tiny_loaded

TEMPLATE = "{% for m in messages %}<|bos|>{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}assistant:"


@pytest.fixture(scope="module")
def chat_llama() -> LoadedModel:
    return tiny_loaded("llama", chat_template=TEMPLATE, name="tiny-chat")


def by_hand(loaded: LoadedModel, ids: list[int], n: int) -> str:
    """Greedy decoding one token at a time, no batching, no padding."""
    start = len(ids)
    with torch.no_grad():
        for _ in range(n):
            ids = ids + [int(loaded.model(torch.tensor([ids])).logits[0, -1].argmax())]
    return loaded.tokenizer.decode(ids[start:], skip_special_tokens=True)


def test_written_scores_match_continuations_computed_by_hand(chat_llama):
    loaded = chat_llama
    base = EditRequest("Toko Yasuda", "{} plays the", "x", "guitar")
    paraphrase, other = "Toko Yasuda is a player of the", "The instrument of Toko Yasuda is the"
    neighbour = "Apple was founded by"
    # answers taken from what the model writes, so that each check's outcome is known in advance
    said = by_hand(loaded, encode_prompt(loaded.tokenizer, paraphrase), 6).strip().split()[0]
    neighbour_says = by_hand(loaded, encode_prompt(loaded.tokenizer, neighbour), 6).strip().split()[0]
    chat_reply = by_hand(loaded, conversation_ids(loaded, fact_question(base, loaded)), 24)
    subject_reply = by_hand(loaded, conversation_ids(loaded, subject_question(base.subject)), 32)
    request = EditRequest(
        base.subject, base.prompt, said, "guitar", paraphrases=(paraphrase, other),
        neighborhood=(NeighborhoodCheck(neighbour, neighbour_says), NeighborhoodCheck(neighbour, neighbour_says + "zz")),
        questions=("What does Toko Yasuda play?",),  # the chat answer still asks the prompt's question: comparable
    )
    other_says = says(by_hand(loaded, encode_prompt(loaded.tokenizer, other), 6), said)

    [scores] = written_scores(loaded, [request])
    assert scores.generation_paraphrase == (1 + other_says) / 2
    assert scores.neighbour_generation == 0.5  # its own answer, not the made-up one
    assert scores.chat_reply == chat_reply and scores.chat_answer == mentions(chat_reply, said)
    assert scores.subject_reply == subject_reply and scores.subject_mentioned == ("Toko Yasuda" in subject_reply)

    summary = evaluate(loaded, [request], generation=True, chat=True)
    assert summary.generation_paraphrase == scores.generation_paraphrase
    assert summary.facts[0].written == scores
    assert evaluate(loaded, [request], generation=True).chat_answer is None  # only when asked for


def test_edited_neighbour_prompts_are_left_out_of_neighbour_generation(chat_llama):
    request = EditRequest("Toko Yasuda", "{} plays the", "piano", "guitar",
                          neighborhood=(NeighborhoodCheck("Apple was founded by", "Steve"),))
    [scores] = written_scores(chat_llama, [request], edited={"Apple was founded by"})
    assert scores.neighbour_generation is None


def test_mentions_and_says():
    assert mentions("The capital is North  Macedonia.", "north macedonia")
    assert not mentions("It is in Macedonia", "North Macedonia")
    assert says(" Paris, of course", "paris") and not says(" It is Paris", "Paris")
