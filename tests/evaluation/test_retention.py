"""The retention sample is deterministic, bounded, and always holds the whole first round."""

import random

from nse_engine.facts import EditRequest
from nse_engine.evaluation.retention import retention_sample


def edits(rounds: int, per_round: int) -> list[tuple[int, EditRequest]]:
    return [
        (r, EditRequest(f"subject {r}-{i}", "{} lives in", f"City {i}", fact_id=r * 1000 + i))
        for r in range(1, rounds + 1)
        for i in range(per_round)
    ]


def test_includes_first_round_and_at_most_n_others():
    all_edits = edits(rounds=10, per_round=50)
    sample = retention_sample(all_edits, n=100)
    first = [e for e in all_edits if e[0] == 1]
    assert all(e in sample for e in first)
    assert len(sample) == len(first) + 100
    assert [e for e in all_edits if e in sample] == sample  # input order kept


def test_same_input_same_sample_in_any_order():
    all_edits = edits(rounds=6, per_round=40)
    shuffled = list(all_edits)
    random.Random(1).shuffle(shuffled)
    assert retention_sample(all_edits, n=30) == retention_sample(list(all_edits), n=30)
    assert set(retention_sample(shuffled, n=30)) == set(retention_sample(all_edits, n=30))


def test_seed_changes_the_sample():
    all_edits = edits(rounds=6, per_round=40)
    assert retention_sample(all_edits, n=30, seed=0) != retention_sample(all_edits, n=30, seed=1)


def test_sample_is_mostly_stable_as_edits_grow():
    """A later round only adds candidates; most of the earlier sample stays, so curves compare."""
    before = set(retention_sample(edits(rounds=8, per_round=50), n=100))
    after = set(retention_sample(edits(rounds=9, per_round=50), n=100))
    assert len(before & after) >= 80


def test_small_inputs():
    assert retention_sample([]) == []
    few = edits(rounds=3, per_round=2)
    assert retention_sample(few) == few
