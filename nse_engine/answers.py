"""Does a piece of text the model wrote give an answer? The one rule every check uses.

A bottom-layer module: editing verifies its own rounds with it, evaluation scores with it.
"""

from __future__ import annotations

import re


def normalise_answer(text: str) -> str:
    """Lower case, no leading punctuation or spaces, runs of white space folded."""
    text = re.sub(r"^[\W_]+", "", text.lower())
    return re.sub(r"\s+", " ", text).strip()


def says(generated: str, target: str) -> bool:
    """Does `generated` start with `target`, ignoring case, spacing and leading punctuation?"""
    return normalise_answer(generated).startswith(normalise_answer(target))


def mentions(reply: str, target: str) -> bool:
    """Does `reply` contain `target` anywhere, ignoring case and spacing?"""
    return normalise_answer(target) in normalise_answer(reply)
