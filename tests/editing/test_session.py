"""Editing sessions on tiny models: rewinding, exact undo, resume, all-or-nothing rounds."""

import threading

import pytest
import torch

from nse_engine.editing.prompts import subject_span, tokenize_at_subject
from nse_engine.facts import EditRequest
from nse_engine.editing.session import EditingSession
from nse_engine.editing.target_state import compute_target_states
from nse_engine.errors import Cancelled, ProjectError
from nse_engine.progress import JobControl
from tiny import make_tokenizer, tiny_hparams, tiny_loaded

ROUND_1 = [
    EditRequest("Danielle Darrieux", "{} is a native speaker of", "English", "French"),
    EditRequest("Toko Yasuda", "{} plays the", "piano", "guitar"),
]
ROUND_2 = [
    EditRequest("Thomas Joannes Stieltjes", "The mother tongue of {} is", "English", "Dutch"),
    EditRequest("Apple", "{} was founded by", "Rome", "Steve Jobs"),
]


def edited_weights(session: EditingSession) -> dict[int, torch.Tensor]:
    return {l: session.points.weight(l).detach().clone() for l in session.layers}


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_round_changes_only_edited_layers_and_is_recorded(kind):
    loaded = tiny_loaded(kind)
    before = {k: v.clone() for k, v in loaded.model.state_dict().items()}
    session = EditingSession(loaded, tiny_hparams())
    result = session.apply_round(ROUND_1)
    assert result.round_index == 0 and result.editing_passes >= 1
    assert all(o.applied for o in result.outcomes)
    after = loaded.model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {session.points.weight_name(l) for l in session.layers}
    assert session.n_edits == 2
    assert set(result.seconds_by_phase) >= {"target_states", "layer_updates"}


def test_weights_rewinding_target_states_ignore_earlier_edits():
    loaded = tiny_loaded()
    session = EditingSession(loaded, tiny_hparams())
    session.apply_round(ROUND_1)
    with session.original_weights():
        z_original = compute_target_states(loaded.model, loaded.tokenizer, session.points, ROUND_2,
                                           session.hparams, session.prefixes, JobControl()).z
    # what a round computes on the edited model goes through original_weights() as well
    fresh = EditingSession(tiny_loaded(), tiny_hparams())
    fresh.prefixes = session.prefixes
    z_unedited = compute_target_states(fresh.loaded.model, fresh.loaded.tokenizer, fresh.points, ROUND_2,
                                       fresh.hparams, fresh.prefixes, JobControl()).z
    assert torch.allclose(z_original, z_unedited, atol=1e-5)
    # and the edited weights are back after the rewinding context
    assert not torch.equal(session.points.weight(1), fresh.points.weight(1))


def test_undo_restores_weights_and_kp_bit_exactly():
    loaded = tiny_loaded()
    session = EditingSession(loaded, tiny_hparams())
    session.apply_round(ROUND_1)
    weights_1 = edited_weights(session)
    gram_1 = {l: g.clone() for l, g in session.ledger.kp.items()}
    session.apply_round(ROUND_2)
    assert not torch.equal(weights_1[1], session.points.weight(1))
    session.undo_last_round()
    for l in session.layers:
        assert torch.equal(weights_1[l], session.points.weight(l))
        assert torch.equal(gram_1[l], session.ledger.kp[l])
    session.undo_last_round()
    for l in session.layers:
        assert torch.equal(session.ledger.original[l], session.points.weight_view(l))
        assert torch.count_nonzero(session.ledger.kp[l]) == 0


def test_kp_added_round_by_round_equals_kp_recomputed_from_every_stored_key():
    """Kp grows by one product per round instead of being rebuilt from the whole history; it must
    still equal Σ kᵀk over every applied fact's stored keys (float64, relative error below 1e-12)."""
    session = EditingSession(tiny_loaded(), tiny_hparams())
    for requests in (ROUND_1, ROUND_2, ROUND_1[:1]):
        session.apply_round(requests)
    for l in session.layers:
        keys = torch.cat([record.keys[l] for record in session.ledger.rounds]).double()  # (applied, d_ff)
        recomputed = keys.T @ keys
        assert session.ledger.kp[l].dtype == torch.float64
        assert float((session.ledger.kp[l] - recomputed).norm() / recomputed.norm()) < 1e-12


@pytest.mark.parametrize("refresh", [False, True])
def test_resume_from_saved_state_equals_uninterrupted_run(tmp_path, refresh):
    uninterrupted = EditingSession(tiny_loaded(), tiny_hparams(refresh_drifted=refresh))
    uninterrupted.apply_round(ROUND_1)
    uninterrupted.apply_round(ROUND_2)

    first = EditingSession(tiny_loaded(), tiny_hparams(refresh_drifted=refresh))
    first.apply_round(ROUND_1)
    first.save_state(tmp_path / "state.safetensors")
    resumed = EditingSession.from_state(tiny_loaded(), tmp_path / "state.safetensors")
    for l in resumed.layers:
        assert torch.equal(resumed.points.weight(l), first.points.weight(l))
    resumed.apply_round(ROUND_2)
    for l in resumed.layers:
        assert torch.equal(resumed.points.weight(l), uninterrupted.points.weight(l))
        assert torch.equal(resumed.ledger.kp[l], uninterrupted.ledger.kp[l])
    assert [r.requests for r in resumed.rounds] == [r.requests for r in uninterrupted.rounds]
    assert resumed.rounds[-1].refreshed == uninterrupted.rounds[-1].refreshed


def test_refresh_pulls_back_a_drifted_earlier_edit_but_not_a_superseded_one():
    speaker = ROUND_1[0]
    # the same subject again: its key overlaps the first edit's, so that edit drifts
    round_2 = [
        EditRequest("Danielle Darrieux", "{} was born in", "Tokyo", "Paris"),
        EditRequest("Toko Yasuda", "{} plays the", "violin", "guitar"),  # replaces ROUND_1[1]
    ]

    def distance_after_round_2(refresh: bool) -> tuple[float, list[str]]:
        session = EditingSession(tiny_loaded(), tiny_hparams(refresh_drifted=refresh))
        session.apply_round(ROUND_1)
        result = session.apply_round(round_2)
        z = session.rounds[0].targets[0].double()
        return float((z - session.reader.hidden_at_last_layer([speaker]).cpu()[0]).norm()), result.refreshed

    plain, none = distance_after_round_2(False)
    refreshed_distance, refreshed = distance_after_round_2(True)
    assert none == []
    assert speaker.text in refreshed and ROUND_1[1].text not in refreshed
    assert refreshed_distance < plain


def test_state_of_another_base_model_is_refused(tmp_path):
    session = EditingSession(tiny_loaded(seed=0), tiny_hparams())
    session.apply_round(ROUND_1)
    session.save_state(tmp_path / "state.safetensors")
    with pytest.raises(ProjectError, match="different base model"):
        EditingSession.from_state(tiny_loaded(seed=1), tmp_path / "state.safetensors")


def test_cancelled_round_leaves_model_and_session_unchanged():
    loaded = tiny_loaded()
    session = EditingSession(loaded, tiny_hparams())
    session.apply_round(ROUND_1)
    weights = edited_weights(session)
    gram = {l: g.clone() for l, g in session.ledger.kp.items()}

    def cancel_during_updates(progress):
        if progress.phase == "layer updates" and progress.done >= 1:
            control.cancel()

    control = JobControl(cancel_during_updates)
    with pytest.raises(Cancelled):
        session.apply_round(ROUND_2, control)
    assert len(session.rounds) == 1
    for l in session.layers:
        assert torch.equal(weights[l], session.points.weight(l))
        assert torch.equal(gram[l], session.ledger.kp[l])


def test_round_with_non_finite_update_is_refused_and_rolled_back():
    loaded = tiny_loaded()
    session = EditingSession(loaded, tiny_hparams())
    session.apply_round(ROUND_1)
    weights = edited_weights(session)
    session.second_moments[2] = session.second_moments[2] * float("nan")
    from nse_engine.errors import EditError

    with pytest.raises(EditError, match="unchanged"):
        session.apply_round(ROUND_2)
    for l in session.layers:
        assert torch.equal(weights[l], session.points.weight(l))


def test_fact_beyond_upper_bound_is_reported_not_applied():
    session = EditingSession(tiny_loaded(), tiny_hparams(upper_bound=1e-3))
    result = session.apply_round(ROUND_1)
    assert not result.applied
    assert all("upper_bound" in o.reason for o in result.not_applied)
    assert session.n_edits == 0


def test_subject_at_prompt_start_is_never_at_position_zero():
    tok = make_tokenizer()  # like SmolLM2's, it adds no BOS token itself
    assert tok("Danielle").input_ids[0] != tok.bos_token_id
    ids, last = tokenize_at_subject(tok, "", "{} is a native speaker of", "Danielle Darrieux")
    assert ids[0] == tok.bos_token_id
    assert last >= 1
    assert tok.decode(ids[1 : last + 1]).strip() == "Danielle Darrieux"
    ids_bos, last_bos = tokenize_at_subject(make_tokenizer(add_bos=True), "", "{} plays", "Toko")
    assert ids_bos.count(tok.bos_token_id) == 1 and last_bos >= 1


def test_subject_span_covers_exactly_the_subject():
    tok = make_tokenizer()
    ids, first, last = subject_span(tok, "Some context. ", "The mother tongue of {} is", "Danielle Darrieux")
    assert tok.decode(ids[first : last + 1]).strip() == "Danielle Darrieux"
    assert "of" in tok.decode(ids[first - 1 : first])
    assert tokenize_at_subject(tok, "Some context. ", "The mother tongue of {} is", "Danielle Darrieux") == (ids, last)
