"""Blocks with a norm after the MLP (Gemma): the value change that moves the norm's output by r."""

import torch
from transformers.models.gemma3.modeling_gemma3 import Gemma3RMSNorm

from nse_engine.editing.post_norm import value_change_for


def _norm(hidden: int, seed: int) -> Gemma3RMSNorm:
    torch.manual_seed(seed)
    norm = Gemma3RMSNorm(hidden, eps=1e-6)
    with torch.no_grad():
        norm.weight.copy_(torch.randn(hidden) * 0.5)  # gains 1 + w of either sign
    return norm


def test_a_tangential_residual_is_reached_exactly_and_the_scale_of_v_is_kept():
    norm = _norm(16, 0)
    value = torch.randn(3, 16, dtype=torch.float64) * 40
    out = norm(value.float()).double()
    gain = norm(torch.ones(1, 16))[0].double()
    # a change that keeps rms(y / gain) = 1 is reachable: turn norm(v) within its ellipsoid
    turned = (out / gain + 0.3 * torch.randn(3, 16, dtype=torch.float64))
    turned = turned / turned.pow(2).mean(-1, keepdim=True).sqrt() * gain
    residual = turned - out
    change = value_change_for(residual, value, norm)
    reached = norm((value + change).float()).double()
    assert torch.allclose(reached, turned, atol=1e-4)
    rms = lambda x: x.pow(2).mean(-1).sqrt()
    assert torch.allclose(rms(value + change), rms(value), rtol=1e-9)


def test_a_huge_residual_only_turns_the_contribution_never_enlarges_it():
    norm = _norm(16, 1)
    value = torch.randn(2, 16, dtype=torch.float64)
    residual = 1e4 * torch.randn(2, 16, dtype=torch.float64)
    change = value_change_for(residual, value, norm)
    gain = norm(torch.ones(1, 16))[0].double()
    reached = norm((value + change).float()).double()
    assert torch.allclose((reached / gain).pow(2).mean(-1), torch.ones(2, dtype=torch.float64), atol=1e-4)
    direction = torch.nn.functional.cosine_similarity(reached / gain, (norm(value.float()).double() + residual) / gain)
    assert (direction > 0.999).all()


def test_a_round_on_a_gemma_block_moves_the_state_towards_its_target():
    from nse_engine.editing.session import EditingSession
    from test_session import ROUND_1
    from tiny import tiny_hparams, tiny_loaded

    inverted = EditingSession(tiny_loaded("gemma3"), tiny_hparams(max_iterations=1))
    assert inverted.points.mlp_output_norm_path == "post_feedforward_layernorm"
    linear = EditingSession(tiny_loaded("gemma3"), tiny_hparams(max_iterations=1))
    linear.points.mlp_output_norm_path = None  # what NSE did before: add the residual to v itself
    for outcome in inverted.apply_round(ROUND_1).outcomes:
        assert outcome.distance_after < 0.3 * outcome.distance_before
    for outcome in linear.apply_round(ROUND_1).outcomes:
        assert outcome.distance_after > outcome.distance_before  # the norm turns the change elsewhere


def test_closed_channels_are_left_alone_and_nothing_divides_by_zero():
    norm = _norm(16, 2)
    with torch.no_grad():
        norm.weight[:3] = -1.0  # gain 1 + w = 0: these channels never reach the residual stream
    value = torch.randn(2, 16, dtype=torch.float64)
    change = value_change_for(torch.randn(2, 16, dtype=torch.float64), value, norm)
    assert torch.isfinite(change).all()
    assert (change[:, :3] == 0).all()
    assert torch.allclose((value + change).pow(2).sum(1), value.pow(2).sum(1))


def test_target_states_behind_a_norm_are_ones_the_block_can_produce():
    from nse_engine.editing.session import EditingSession
    from nse_engine.editing.target_state import compute_target_states
    from nse_engine.progress import silent
    from test_session import ROUND_1
    from tiny import tiny_hparams, tiny_loaded

    hp = tiny_hparams(v_lr=2.0, v_num_grad_steps=10)
    session = EditingSession(tiny_loaded("gemma3"), hp)
    points, layer = session.points, session.layers[-1]
    norm = points.mlp_output_norm(layer)
    with torch.no_grad():  # a random tiny MLP's output is so small that the norm's eps would dominate it
        points.weight(layer).mul_(1e3)

    def unreachable_share() -> float:
        """How much of z − h the last block cannot deliver by any change of its MLP output."""
        targets = compute_target_states(session.loaded.model, session.loaded.tokenizer, points, ROUND_1,
                                        hp, [], silent())
        wanted = (targets.z - targets.h_init).double()  # (n, hidden)
        value = session.reader.mlp_output_at_last_layer(ROUND_1).double()  # (n, hidden)
        change = value_change_for(wanted, value, norm)
        delivered = norm((value + change).float()).double() - norm(value.float()).double()
        return float(((delivered - wanted).norm(dim=1) / wanted.norm(dim=1)).max())

    assert unreachable_share() < 1e-3
    points.mlp_output_norm_path = None  # a delta on the residual itself, as before
    assert unreachable_share() > 0.1
