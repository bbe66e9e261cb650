"""Fixtures for the reliability tests: a tiny model on disk, one statistics/settings cache for
the whole session (the tiny model's derived settings are the same every time), facts files."""

from __future__ import annotations

from pathlib import Path

import pytest

from tiny import save_model

from reliability.faults import FACTS, write_facts_csv


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return save_model("gpt2", tmp_path_factory.mktemp("models") / "tiny-gpt2")


@pytest.fixture(scope="session")
def _shared_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("nse-cache")


@pytest.fixture(autouse=True)
def _cache_shared_across_tests(_isolated_dirs, _shared_cache, monkeypatch):
    monkeypatch.setenv("NSE_CACHE_DIR", str(_shared_cache))


@pytest.fixture
def facts_csv(tmp_path) -> Path:
    return write_facts_csv(tmp_path / "facts.csv", FACTS)
