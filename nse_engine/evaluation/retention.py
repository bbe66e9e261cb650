"""Which earlier edits to re-check after each round: a fixed sample, so curves stay comparable.

Each fact gets a pseudo-random rank from a hash of its identity and the seed; the sample is the
facts with the lowest ranks. The same edits give the same sample in any order and in any process,
and a fact once sampled stays sampled until a later fact outranks it, so a retention curve follows
mostly the same facts from round to round. Every fact of the first round is always included:
they have been through the most later edits.
"""

from __future__ import annotations

import hashlib
from typing import Sequence

from nse_engine.facts import EditRequest

DEFAULT_RETENTION_SAMPLE = 300


def retention_sample(
    edits: Sequence[tuple[int, EditRequest]],
    n: int = DEFAULT_RETENTION_SAMPLE,
    seed: int = 0,
) -> list[tuple[int, EditRequest]]:
    """All first-round facts plus at most `n` of the others, as (round index, request) in input order."""
    if not edits:
        return []
    first_round = min(round_index for round_index, _ in edits)
    later = [i for i, (round_index, _) in enumerate(edits) if round_index != first_round]
    chosen = set(sorted(later, key=lambda i: _rank(edits[i][1], seed))[:n])
    return [e for i, e in enumerate(edits) if e[0] == first_round or i in chosen]


def _rank(request: EditRequest, seed: int) -> bytes:
    """A stable pseudo-random sort key for one fact (Python's hash() changes between processes)."""
    identity = (
        f"id:{request.fact_id}" if request.fact_id is not None
        else f"{request.subject}\x1f{request.prompt}\x1f{request.target_new}"
    )
    return hashlib.sha256(f"{seed}\x1e{identity}".encode()).digest()
