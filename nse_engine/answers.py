"""Does a piece of text the model wrote give an answer? The one rule every check uses.

An object is said only as whole words: "Parisville" does not say "Paris", while "Paris.",
"Paris, France" and "the U.S. Army" say "Paris" and "U.S."; "1,000" and "3.5" do not say "1" or
"3" (a "." or "," between digits is inside the number). Case and runs of spaces are folded.
An object with no letter or digit ("…", "€", an emoji) is never said: it names nothing a reader
could check. Scripts written without spaces (Chinese, Japanese, Thai, …) need no boundary.

A bottom-layer module: editing verifies its own rounds with it, evaluation scores with it.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_LEADING = re.compile(r"^[\W_]+")
_SPACELESS_SCRIPTS = ("CJK", "HIRAGANA", "KATAKANA", "THAI", "LAO", "KHMER", "MYANMAR")


def normalise_answer(text: str) -> str:
    """Lower case, no leading punctuation or spaces, runs of white space folded."""
    text = _LEADING.sub("", text.lower())
    return re.sub(r"\s+", " ", text).strip()


def has_word(text: str) -> bool:
    """Does `text` hold a letter or a digit, something an answer can be recognised by?"""
    return any(ch.isalnum() for ch in text)


def says(generated: str, target: str) -> bool:
    """Does `generated` start with `target` as whole words, ignoring case, spacing and leading punctuation?"""
    pattern = _pattern(target)
    if pattern is None:
        return False
    start = len(generated) - len(_LEADING.sub("", generated))
    found = pattern.match(generated, start)
    return found is not None and _ends_a_word(generated, found.end())


def mentions(reply: str, target: str) -> bool:
    """Does `reply` contain `target` as whole words anywhere, ignoring case and spacing?"""
    return answer_span(reply, target) is not None


def answer_span(text: str, target: str) -> tuple[int, int] | None:
    """Where `text` first says `target` as whole words (start, end), or None."""
    pattern = _pattern(target)
    if pattern is None:
        return None
    for found in pattern.finditer(text):
        if _starts_a_word(text, found.start()) and _ends_a_word(text, found.end()):
            return found.start(), found.end()
    return None


def spells(text: str, name: str) -> bool:
    """Does `text` write `name` exactly (same letters and case) as whole words? A reply that
    repeats the subject "Yulin" as "Yukon", or inside "Yulintown", misspells it."""
    if not has_word(name):
        return False
    return any(_starts_a_word(text, m.start()) and _ends_a_word(text, m.end())
               for m in re.finditer(re.escape(name), text))


@lru_cache(maxsize=4096)
def _pattern(target: str) -> re.Pattern[str] | None:
    """The target's words (leading punctuation dropped) with any run of spaces between them. Not
    lower-cased: IGNORECASE folds case one character at a time, and a lower-case form may be longer
    ("İzmir".lower() has six characters), which no text would then match."""
    words = _LEADING.sub("", target).split()
    if not words or not has_word(" ".join(words)):
        return None
    return re.compile(r"\s+".join(re.escape(word) for word in words), re.IGNORECASE)


def _starts_a_word(text: str, at: int) -> bool:
    return at == 0 or not _joined(text, at)


def _ends_a_word(text: str, at: int) -> bool:
    return at == len(text) or not _joined(text, at)


def _joined(text: str, at: int) -> bool:
    """Do the characters either side of position `at` belong to one word (so no answer may begin
    or end there)? A "." or "," between two digits is inside a number: "1,000" does not say "1"."""
    left, right = text[at - 1], text[at]
    if left.isdigit() and right in ".," and text[at + 1:at + 2].isdigit():
        return True
    if right.isdigit() and left in ".," and text[max(at - 2, 0):at - 1].isdigit():
        return True
    return _wordlike(left) and _wordlike(right) and not (_spaceless(left) or _spaceless(right))


def _wordlike(ch: str) -> bool:
    return ch.isalnum() or unicodedata.category(ch).startswith("M")


def _spaceless(ch: str) -> bool:
    return unicodedata.name(ch, "").startswith(_SPACELESS_SCRIPTS)
