"""The least-squares updates of one layer's MLP output projection: NSE's (and MEMIT's) and AlphaEdit's.

With keys K (n, d_ff) of the facts being edited and residuals R (n, hidden) that the layer's
output must move by, NSE updates only the neurons S whose summed |key| covers
`neuron_threshold` of the total, solving in float64

    ΔW_S (λ C_SS + β Kp_SS + K_Sᵀ K_S) = Rᵀ K_S

where C is the second moment of keys on general text and Kp = Σ k kᵀ over all earlier edits.
The paper has β = 1: an earlier edit weighs as much as a new one. β > 1 protects earlier edits
more strongly when keys overlap (small MLPs; see derive.py).
An earlier edit that has drifted from its target state can be edited again in the same solve:
its key as stored in Kp is swapped for its current key with weight β, and its residual weighs β,
so the least squares asks that key's output to move by its residual instead of staying put.
ΔW_S = Rᵀ (K_S A⁻¹) is stored as its two factors, so rounds can be replayed and undone exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class LayerUpdate:
    """One layer's update in one editing pass: ΔW[:, neurons] = left @ right."""

    layer: int
    neurons: torch.Tensor  # (s,) int64, sorted
    left: torch.Tensor  # (hidden, n) float32: Rᵀ
    right: torch.Tensor  # (n, s) float32: K_S A⁻¹

    def delta(self) -> torch.Tensor:
        """ΔW restricted to the selected neurons, (hidden, s) in float64."""
        return self.left.double() @ self.right.double()


def residual_shares(n_layers: int, ratio: float) -> list[float]:
    """Share of the residual still to go that each edited layer takes, lowest layer first.

    With every layer reaching its share, layer i moves ratio^i / Σ_j ratio^j of the whole
    residual: ratio 1 spreads it evenly (the paper's 1 / remaining layers), ratio < 1 puts more
    of it on the lower layers.
    """
    weights = [ratio**i for i in range(n_layers)]
    return [weights[i] / sum(weights[i:]) for i in range(n_layers)]


def select_neurons(keys: torch.Tensor, threshold: float) -> torch.Tensor:
    """Smallest set of neurons whose summed |key| over the batch reaches `threshold` of the total.

    keys: (n, d_ff). Returns sorted int64 indices; all neurons when threshold is 1.0.
    """
    activation = keys.abs().double().sum(0)  # (d_ff,)
    if threshold >= 1.0:
        return torch.arange(keys.shape[1], device=keys.device)
    order = torch.argsort(activation, descending=True)
    cumulative = torch.cumsum(activation[order], 0)  # (d_ff,)
    needed = threshold * cumulative[-1]
    count = int(torch.searchsorted(cumulative, needed).item()) + 1
    return torch.sort(order[: min(count, keys.shape[1])]).values


def solve_layer_update(
    *,
    layer: int,
    keys: torch.Tensor,  # (n, d_ff)
    residuals: torch.Tensor,  # (n, hidden)
    second_moment: torch.Tensor,  # (d_ff, d_ff) float64, C
    kp: torch.Tensor,  # (d_ff, d_ff) float64, Kp = Σ k kᵀ of earlier edits
    mom2_update_weight: float,
    neuron_threshold: float,
    earlier_edits_weight: float = 1.0,
    earlier_stored_keys: torch.Tensor | None = None,  # (e, d_ff): the last e rows are earlier edits, keys as in Kp
    update_norm_weight: float = 0.0,
) -> LayerUpdate:
    """Solve NSE's regularised least squares for one layer, in float64 (Cholesky).

    `update_norm_weight` > 0 adds ENCORE's penalty on ‖ΔW‖²: that weight times I in the system.
    """
    neurons = select_neurons(keys, neuron_threshold)  # (s,)
    k_s = keys.double()[:, neurons]  # (n, s)
    e = 0 if earlier_stored_keys is None else len(earlier_stored_keys)
    new, now = k_s[: len(k_s) - e], k_s[len(k_s) - e :]  # (n - e, s), (e, s)
    a = (
        mom2_update_weight * second_moment[neurons][:, neurons]
        + earlier_edits_weight * kp[neurons][:, neurons]
        + new.T @ new
    )  # (s, s), symmetric positive definite
    if e:
        stored = earlier_stored_keys.to(k_s.device, torch.float64)[:, neurons]  # (e, s)
        a = a + earlier_edits_weight * (now.T @ now - stored.T @ stored)
    if update_norm_weight:
        a = a + update_norm_weight * torch.eye(len(neurons), dtype=a.dtype, device=a.device)
    chol, info = torch.linalg.cholesky_ex(a)
    if int(info) == 0:
        right = torch.cholesky_solve(k_s.T, chol).T  # (n, s) = K_S A⁻¹
    else:
        right = torch.linalg.solve(a, k_s.T).T
    left = residuals.double().T  # (hidden, n)
    if e:
        left = torch.cat([left[:, : len(k_s) - e], earlier_edits_weight * left[:, len(k_s) - e :]], dim=1)
    return _finite_update(layer, neurons, left, right)


def solve_projected_update(
    *,
    layer: int,
    keys: torch.Tensor,  # (n, d_ff)
    residuals: torch.Tensor,  # (n, hidden)
    projection: torch.Tensor,  # (d_ff, d_ff) float64, P onto the directions general text leaves free
    kp: torch.Tensor,  # (d_ff, d_ff) float64, Kp = Σ k kᵀ of earlier edits
    update_norm_weight: float,
) -> LayerUpdate:
    """AlphaEdit's update (arXiv 2410.02355, eq. 12) for one layer, in float64:

        ΔWᵀ = (P (Kᵀ K + Kp) + L2 · I)⁻¹ P Kᵀ R

    Every column of ΔWᵀ lies in the range of P, so the update leaves the output of every key
    in the directions P projects out (general text's keys) exactly as it was.
    """
    k = keys.to(projection.device, torch.float64)  # (n, d_ff)
    a = projection @ (k.T @ k + kp) + update_norm_weight * torch.eye(k.shape[1], dtype=k.dtype, device=k.device)
    right = torch.linalg.solve(a, projection @ k.T).T  # (n, d_ff) = (A⁻¹ P Kᵀ)ᵀ
    left = residuals.double().T.to(right.device)  # (hidden, n)
    return _finite_update(layer, torch.arange(k.shape[1]), left, right)


def _finite_update(layer: int, neurons: torch.Tensor, left: torch.Tensor, right: torch.Tensor) -> LayerUpdate:
    if not (torch.isfinite(right).all() and torch.isfinite(left).all()):
        raise FloatingPointError(f"layer {layer}: the update is not finite (NaN or inf)")
    return LayerUpdate(layer, neurons.cpu(), left.float().cpu(), right.float().cpu())
