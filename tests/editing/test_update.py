"""The neuron-level least-squares update: selection share and the normal equations."""

import pytest
import torch

from nse_engine.editing.update import residual_shares, select_neurons, solve_layer_update


def test_neuron_selection_keeps_the_smallest_set_reaching_the_share():
    keys = torch.tensor([[4.0, -1.0, 0.5, 2.0, 0.0], [2.0, 1.0, -0.5, -2.0, 0.0]])
    # summed |key| per neuron: [6, 2, 1, 4, 0]; total 13
    assert select_neurons(keys, 6 / 13).tolist() == [0]
    assert select_neurons(keys, 0.5).tolist() == [0, 3]  # 6 < 6.5 <= 10
    assert select_neurons(keys, 10 / 13).tolist() == [0, 3]
    assert select_neurons(keys, 0.8).tolist() == [0, 1, 3]  # 10 < 10.4 <= 12
    assert select_neurons(keys, 1.0).tolist() == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("ratio", [1.0, 0.8, 1.5])
def test_layers_take_the_residual_in_the_set_ratio(ratio):
    shares = residual_shares(5, ratio)
    remaining, taken = 1.0, []
    for share in shares:  # each layer reaches its share of what is still to go
        taken.append(remaining * share)
        remaining -= taken[-1]
    assert remaining == pytest.approx(0.0, abs=1e-12)  # the last layer takes the rest
    assert [t / taken[0] for t in taken] == pytest.approx([ratio**i for i in range(5)])
    if ratio == 1.0:
        assert shares == pytest.approx([1 / 5, 1 / 4, 1 / 3, 1 / 2, 1])  # the paper's even spread


def test_selected_share_on_random_keys():
    torch.manual_seed(0)
    keys = torch.randn(7, 300).exp()
    for share in (0.3, 0.6, 0.8, 0.95):
        chosen = select_neurons(keys, share)
        activation = keys.abs().double().sum(0)
        covered = activation[chosen].sum() / activation.sum()
        assert covered >= share
        # dropping the weakest chosen neuron falls below the share: the set is minimal
        weakest = activation[chosen].min()
        assert covered - weakest / activation.sum() < share


@pytest.mark.parametrize("earlier_weight", [1.0, 4.0])
def test_update_meets_its_normal_equations(earlier_weight):
    torch.manual_seed(1)
    n, d_ff, hidden = 6, 40, 12
    keys = torch.randn(n, d_ff)
    residuals = torch.randn(n, hidden)
    basis = torch.randn(d_ff, 3 * d_ff, dtype=torch.float64)
    second_moment = basis @ basis.T / (3 * d_ff)
    earlier = torch.randn(9, d_ff, dtype=torch.float64)
    gram = earlier.T @ earlier
    update = solve_layer_update(
        layer=3, keys=keys, residuals=residuals, second_moment=second_moment, kp=gram, mom2_update_weight=5.0,
        neuron_threshold=0.7, earlier_edits_weight=earlier_weight,
    )
    s = update.neurons
    k_s = keys.double()[:, s]
    a = 5.0 * second_moment[s][:, s] + earlier_weight * gram[s][:, s] + k_s.T @ k_s
    delta = update.delta()  # (hidden, s)
    lhs = delta @ a
    rhs = residuals.double().T @ k_s
    assert torch.allclose(lhs, rhs, rtol=1e-5, atol=1e-5)
    assert len(s) < d_ff  # only part of the neurons were updated


def test_update_with_drifted_earlier_edits_meets_its_normal_equations():
    """The last rows are edits already in Kp: their stored key is swapped for the current
    one, and key and residual weigh β, so the solve pulls them back instead of holding them."""
    torch.manual_seed(2)
    n, e, d_ff, hidden, beta = 5, 3, 40, 12, 4.0
    keys = torch.randn(n + e, d_ff)  # new facts first, then the drifted earlier ones
    residuals = torch.randn(n + e, hidden)
    basis = torch.randn(d_ff, 3 * d_ff, dtype=torch.float64)
    second_moment = basis @ basis.T / (3 * d_ff)
    stored = keys[n:].double() + 0.1 * torch.randn(e, d_ff, dtype=torch.float64)  # keys when they were edited
    earlier_keys = torch.cat([torch.randn(9, d_ff, dtype=torch.float64), stored])
    gram = earlier_keys.T @ earlier_keys
    update = solve_layer_update(
        layer=3, keys=keys, residuals=residuals, second_moment=second_moment, kp=gram, mom2_update_weight=5.0,
        neuron_threshold=0.9, earlier_edits_weight=beta, earlier_stored_keys=stored.float(),
    )
    s = update.neurons
    new, now, kept = keys.double()[:n, s], keys.double()[n:, s], stored.float().double()[:, s]
    a = 5.0 * second_moment[s][:, s] + beta * (gram[s][:, s] - kept.T @ kept + now.T @ now) + new.T @ new
    rhs = residuals[:n].double().T @ new + beta * residuals[n:].double().T @ now
    assert torch.allclose(update.delta() @ a, rhs, rtol=1e-5, atol=1e-5)
