"""The real dev facts (GeoNames) that SmolLM2 knows, read from ../shared beside the repository."""

import json
from pathlib import Path

import pytest

from nse_engine.facts import EditRequest, NeighborhoodCheck

FACTS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "facts_dev.jsonl"

needs_dev_facts = pytest.mark.skipif(not FACTS.exists(), reason=f"dev facts not found at {FACTS}")


def dev_facts(n: int, start: int = 0) -> list[EditRequest]:
    lines = FACTS.read_text(encoding="utf-8").splitlines()[start : start + n]
    return [
        EditRequest(
            subject=r["subject"], prompt=r["prompt"], target_new=r["target_new"], target_true=r["target_true"],
            paraphrases=tuple(r["paraphrase_prompts"]),
            neighborhood=tuple(NeighborhoodCheck(x["prompt"], x["target"]) for x in r["neighborhood"]),
            relation=r["relation"], fact_id=start + i,
        )
        for i, r in enumerate(map(json.loads, lines))
    ]
