"""A round checks what the model writes after each new fact's prompt, and edits again the facts
it does not say yet, within a budget; the round stays all-or-nothing."""

import pytest
import torch

from nse_engine.answers import says
from nse_engine.editing.nse_round import VERIFY_MIN_PROGRESS
from nse_engine.editing.session import EditingSession
from nse_engine.editing.state_file import read_state
from nse_engine.errors import Cancelled
from nse_engine.progress import JobControl
from test_session import ROUND_1, ROUND_2, edited_weights
from tiny import tiny_hparams, tiny_loaded


def test_facts_not_said_get_extra_passes_until_the_budget_ends(tmp_path):
    # a random tiny model never writes the new objects, so every fact uses the whole budget
    session = EditingSession(tiny_loaded(), tiny_hparams(verify_passes=2, max_iterations=1))
    result = session.apply_round(ROUND_1)
    record = session.rounds[-1]
    assert len(record.updates) == (1 + 2) * len(session.layers)  # one pass, then two of verification
    for outcome in result.outcomes:
        assert outcome.applied and outcome.held is False and outcome.extra_passes == 2
        assert outcome.continuation == session.reader.continuations([outcome.request])[0]
        assert not says(outcome.continuation, outcome.request.target_new)
    session.save_state(tmp_path / "state.safetensors")
    assert [o.held for o in read_state(tmp_path / "state.safetensors").rounds[0].outcomes] == [False, False]


def test_facts_the_round_could_not_move_get_no_extra_passes():
    # λ this large lets no pass move a fact the required share closer to z: pushing such a fact
    # again would only disturb the others, so the budget goes unused and each is reported not held
    session = EditingSession(tiny_loaded(), tiny_hparams(verify_passes=3, max_iterations=1, mom2_update_weight=1e9))
    result = session.apply_round(ROUND_1)
    assert len(session.rounds[-1].updates) == len(session.layers)  # the round's one pass only
    for outcome in result.outcomes:
        assert outcome.distance_after > (1 - VERIFY_MIN_PROGRESS) * outcome.distance_before
        assert outcome.held is False and outcome.extra_passes == 0


def test_a_fact_left_within_alpha_gets_an_extra_pass_and_no_second_one_it_cannot_use():
    # alpha this large: the round itself edits nothing (every fact starts within it), so its
    # facts are not stuck, only not pushed; the extra pass then barely moves them (λ huge), so
    # each gets exactly one
    session = EditingSession(tiny_loaded(), tiny_hparams(verify_passes=3, max_iterations=2, alpha=1e8,
                                                         mom2_update_weight=1e9))
    result = session.apply_round(ROUND_1)
    assert result.editing_passes == 0
    assert len(session.rounds[-1].updates) == len(session.layers)  # one extra pass, for both facts
    for outcome in result.outcomes:
        assert outcome.held is False and outcome.extra_passes == 1


def test_without_a_budget_every_fact_is_still_checked_and_nothing_more_is_edited():
    session = EditingSession(tiny_loaded(), tiny_hparams(max_iterations=1))
    result = session.apply_round(ROUND_1)
    assert len(session.rounds[-1].updates) == len(session.layers)  # the one pass, no extra ones
    for outcome in result.outcomes:
        assert outcome.held is False and outcome.extra_passes == 0
        assert outcome.continuation == session.reader.continuations([outcome.request])[0]


def test_a_round_cancelled_while_verifying_leaves_everything_as_before():
    session = EditingSession(tiny_loaded(), tiny_hparams(verify_passes=3, max_iterations=1))
    session.apply_round(ROUND_1)
    weights = edited_weights(session)
    kp = {l: g.clone() for l, g in session.ledger.kp.items()}

    def cancel_in_verification(progress):
        if progress.phase == "verifying" and progress.done >= 1:
            control.cancel()

    control = JobControl(cancel_in_verification)
    with pytest.raises(Cancelled):
        session.apply_round(ROUND_2, control)
    assert len(session.rounds) == 1
    for l in session.layers:
        assert torch.equal(weights[l], session.points.weight(l))
        assert torch.equal(kp[l], session.ledger.kp[l])
