"""NAS, norm-anchor scaling (arXiv 2602.02543): keep every target value at the original model's norm.

Sequential edits grow the solved value vectors and the edited weights together, each feeding
the other. NAS breaks the loop by rescaling each fact's target value v* = v0 + δ (the last edited
layer's MLP output at the subject plus the target-state delta) to a fixed reference norm — the
mean ‖v*‖ of probe edits on the original model — and by skipping an edit whose v* is more than
SKIP_RATIO times that norm.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

SKIP_RATIO = 2.0


@dataclass(frozen=True)
class AnchoredTargets:
    z: torch.Tensor  # (n, hidden) target states with v* rescaled (z = h where skipped)
    skipped: torch.Tensor  # (n,) bool: ‖v*‖ > SKIP_RATIO × anchor, the edit is not made
    value_norm: torch.Tensor  # (n,) ‖v*‖ before rescaling


def target_values(z: torch.Tensor, h: torch.Tensor, mlp_output: torch.Tensor) -> torch.Tensor:
    """v* = v0 + (z − h), (n, hidden)."""
    return mlp_output + (z - h)


def anchor_targets(z: torch.Tensor, h: torch.Tensor, mlp_output: torch.Tensor, anchor: float) -> AnchoredTargets:
    """z (n, hidden) target states, h (n, hidden) the states they were optimised from, mlp_output
    (n, hidden) v0 at the same positions and weights; `anchor` the reference norm."""
    value = target_values(z, h, mlp_output)  # (n, hidden)
    norm = value.norm(dim=1)  # (n,)
    skipped = norm > SKIP_RATIO * anchor
    scaled = value * (anchor / norm.clamp_min(1e-12))[:, None]  # (n, hidden)
    anchored = h - mlp_output + scaled
    return AnchoredTargets(torch.where(skipped[:, None], h, anchored), skipped, norm)


def reference_norm(value_norms: torch.Tensor, upper_quantile: float = 0.95) -> float:
    """Mean of the probe edits' ‖v*‖ without the top 5 % (the NAS authors' trimmed mean)."""
    ordered = torch.sort(value_norms.double()).values
    drop = int((1.0 - upper_quantile) * len(ordered))
    return float(ordered[: len(ordered) - drop].mean())
