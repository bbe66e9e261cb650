"""Tiny models wrapped as LoadedModel, and small corpus files, for the statistics tests."""

import json

import pytest

from nse_engine.model.architecture import find_edit_points
from tiny import _TEXT, tiny_loaded


@pytest.fixture
def loaded_factory():
    """tiny_loaded(kind, seed, add_bos) with edit points: (loaded, points)."""

    def make(kind: str = "llama", seed: int = 0, add_bos: bool = False):
        loaded = tiny_loaded(kind, seed, add_bos)
        return loaded, find_edit_points(loaded.model)

    return make


@pytest.fixture
def txt_corpus(tmp_path):
    """About 1,500 tokens of paragraphs of varied length."""
    lines = [line for line in _TEXT.splitlines() if line.strip()]
    paragraphs = [" ".join(lines[i % len(lines) : i % len(lines) + 1 + i % 3]) for i in range(40)]
    path = tmp_path / "corpus.txt"
    path.write_text("\n\n".join(paragraphs), encoding="utf-8")
    return path


@pytest.fixture
def jsonl_corpus(tmp_path):
    lines = [line for line in _TEXT.splitlines() if line.strip()]
    path = tmp_path / "corpus.jsonl"
    path.write_text("\n".join(json.dumps({"text": lines[i % len(lines)], "id": i}) for i in range(40)), encoding="utf-8")
    return path
