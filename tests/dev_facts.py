"""The first real dev facts (GeoNames) that SmolLM2 knows, from a copy of the head of facts_dev.jsonl
kept in the repository, so the tests never reach outside it."""

import json
from pathlib import Path

from nse_engine.facts import EditRequest, NeighborhoodCheck

FACTS = Path(__file__).resolve().parent / "data" / "facts_dev_head.jsonl"


def dev_facts(n: int, start: int = 0) -> list[EditRequest]:
    lines = FACTS.read_text(encoding="utf-8").splitlines()[start : start + n]
    if len(lines) < n:
        raise ValueError(f"{FACTS.name} holds {start + len(lines)} facts; add lines from facts_dev.jsonl for more")
    return [
        EditRequest(
            subject=r["subject"], prompt=r["prompt"], target_new=r["target_new"], target_true=r["target_true"],
            paraphrases=tuple(r["paraphrase_prompts"]),
            neighborhood=tuple(NeighborhoodCheck(x["prompt"], x["target"]) for x in r["neighborhood"]),
            relation=r["relation"], fact_id=start + i,
        )
        for i, r in enumerate(map(json.loads, lines))
    ]
