"""Fluency: does the edited model still write varied text? ROME's weighted n-gram entropy.

Repetitive, degenerate text ("Paris Paris Paris ...") has few distinct bi- and trigrams and so a
low entropy; an edit that damages the model shows up here before it shows up anywhere else.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Sequence

from nse_engine.model.generation import OnBatch, greedy_continuations
from nse_engine.model.loading import LoadedModel

FLUENCY_TOKENS = 64
# General prompts unrelated to any edited fact, in plain completion style.
FLUENCY_PROMPTS = (
    "The history of the city",
    "My favourite recipe is",
    "The best way to learn a new language is",
    "Yesterday I went to the market and",
    "Scientists have recently discovered that",
    "The football match last night",
    "In the middle of the forest there was",
    "The most important invention of the twentieth century",
    "When I was a child, my grandmother",
    "The economy of the country depends on",
    "A good night's sleep",
    "The museum is famous for",
    "Music has always been",
    "The train to the coast",
    "Our company announced today that",
    "The ocean covers",
    "Every morning, the old fisherman",
    "The rules of chess are",
    "The weather this winter",
    "Learning to play the piano",
)
_NGRAM_WEIGHTS = ((2, 2 / 3), (3, 4 / 3))


def words(text: str) -> list[str]:
    """Simple word tokenisation: runs of word characters, and each punctuation mark on its own."""
    return re.findall(r"\w+|[^\w\s]", text)


def ngram_entropy(text: str) -> float:
    """Weighted bi/trigram entropy of one text in bits: mean of 2/3·H2 and 4/3·H3 (ROME)."""
    tokens = words(text)
    weighted = []
    for n, weight in _NGRAM_WEIGHTS:
        counts = Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
        total = sum(counts.values())
        entropy = -sum(c / total * math.log2(c / total) for c in counts.values())
        weighted.append(weight * entropy)
    return sum(weighted) / len(weighted)


def mean_ngram_entropy(texts: Sequence[str]) -> float:
    return sum(ngram_entropy(t) for t in texts) / len(texts)


def fluency_score(
    loaded: LoadedModel,
    batch_size: int = 32,
    on_batch: OnBatch | None = None,
    max_new_tokens: int = FLUENCY_TOKENS,
) -> float:
    """Mean n-gram entropy of the model's greedy continuations of FLUENCY_PROMPTS."""
    texts = greedy_continuations(
        loaded.model, loaded.tokenizer, FLUENCY_PROMPTS, max_new_tokens, batch_size, on_batch
    )
    return mean_ngram_entropy(texts)
