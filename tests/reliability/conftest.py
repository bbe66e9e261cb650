"""Fixtures for the reliability tests: the session's one statistics/settings cache for every test
(the tiny model's derived settings are the same every time), facts files."""

from __future__ import annotations

from pathlib import Path

import pytest

from reliability.faults import FACTS, write_facts_csv


@pytest.fixture(autouse=True)
def _cache_shared_across_tests(shared_cache):
    """Every reliability test uses the session's cache (tests/conftest.py)."""


@pytest.fixture
def facts_csv(tmp_path) -> Path:
    return write_facts_csv(tmp_path / "facts.csv", FACTS)
