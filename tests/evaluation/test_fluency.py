"""Weighted n-gram entropy: exact on a hand example, lower for repetitive text."""

import math

import pytest

from nse_engine.evaluation.fluency import FLUENCY_PROMPTS, fluency_score, mean_ngram_entropy, ngram_entropy, words
from nse_engine.model.generation import greedy_continuations


def test_words_split_punctuation():
    assert words("Paris, France's capital.") == ["Paris", ",", "France", "'", "s", "capital", "."]


def test_exact_value_of_a_hand_example():
    # bigrams (a b) (b a) (a b): H2 = H(2/3, 1/3); trigrams (a b a) (b a b): H3 = 1 bit
    h2 = -(2 / 3 * math.log2(2 / 3) + 1 / 3 * math.log2(1 / 3))
    assert ngram_entropy("a b a b") == pytest.approx((2 / 3 * h2 + 4 / 3 * 1.0) / 2)


def test_all_distinct_ngrams():
    # 5 words: 4 distinct bigrams (2 bits), 3 distinct trigrams (log2 3 bits)
    assert ngram_entropy("one two three four five") == pytest.approx((2 / 3 * 2 + 4 / 3 * math.log2(3)) / 2)


def test_repetitive_text_has_lower_entropy():
    varied = "The museum opened in 1901 and houses paintings, sculptures and rare books from Asia."
    repetitive = "Paris Paris Paris Paris Paris Paris Paris Paris Paris Paris Paris Paris Paris Paris"
    assert ngram_entropy(repetitive) == 0.0
    assert ngram_entropy(varied) > 2.0
    assert mean_ngram_entropy([varied, repetitive]) == pytest.approx(ngram_entropy(varied) / 2)


def test_too_short_text_scores_zero():
    assert ngram_entropy("") == 0.0
    assert ngram_entropy("word") == 0.0


def test_fluency_score_is_the_entropy_of_what_the_model_writes(tiny_llama):
    seen = []
    score = fluency_score(tiny_llama, batch_size=8, on_batch=seen.append, max_new_tokens=8)
    texts = greedy_continuations(tiny_llama.model, tiny_llama.tokenizer, FLUENCY_PROMPTS, 8)
    assert score == pytest.approx(mean_ngram_entropy(texts))
    assert score > 1.0  # a random model writes varied (if meaningless) text
    assert sum(seen) == len(FLUENCY_PROMPTS) >= 15


def test_a_model_that_repeats_itself_scores_zero(tiny_llama):
    """What an edit that broke the model looks like: the same piece again and again."""
    stuck = tiny_llama.tokenizer(" Paris", add_special_tokens=False)["input_ids"][0]

    def always_stuck(_module, _args, logits):
        logits[..., stuck] += 1e4
        return logits

    handle = tiny_llama.model.get_output_embeddings().register_forward_hook(always_stuck)
    try:
        assert fluency_score(tiny_llama, batch_size=8, max_new_tokens=8) == 0.0
    finally:
        handle.remove()
