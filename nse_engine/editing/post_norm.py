"""Edits in blocks whose MLP output passes through a norm before it reaches the residual stream.

Gemma 2 and 3 add `post_feedforward_layernorm(mlp(x))` to the residual, not `mlp(x)`: an RMS
norm rescales the whole MLP output v (the edited projection's output) to unit RMS and multiplies
it by a learned gain. NSE asks the projection to move the block's output by a residual r;
adding r to v would instead change the direction of v and leave its size to the norm, so the
block output moves by something else entirely, and every input whose key overlaps is damaged.

So the change of v is found by inverting the norm at the fact's subject token. The block
should output y = norm(v) + r; norm(x) = x / rms(x) · gain can only be y rescaled so that
rms(y / gain) = 1 (the norm fixes the size of the MLP's contribution and leaves only its
direction free), and every x = c · y / gain (c > 0) gives exactly that. c keeps the RMS of v,
the smallest change of scale. For a small r the block output then moves by r less its part
along norm(v); a large r can only turn the MLP's contribution, never blow it up.
"""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def value_change_for(residual: torch.Tensor, value: torch.Tensor, norm: nn.Module) -> torch.Tensor:
    """The change of the MLP output `value` (n, hidden) after which `norm` of it moves by `residual`
    (n, hidden); float64 like the inputs' solve."""
    device, dtype = residual.device, torch.float64
    value = value.to(device, dtype)
    current = norm(value.to(next(norm.parameters()).dtype).to(next(norm.parameters()).device)).to(device, dtype)  # (n, hidden)
    wanted = current + residual.to(dtype)  # (n, hidden)
    gain = _gain(norm).to(device, dtype)  # (hidden,)
    direction = wanted / gain  # (n, hidden): any positive multiple normalises to `wanted`
    scale = _rms(value) / _rms(direction).clamp_min(1e-30)  # (n, 1)
    return direction * scale - value


def _rms(x: torch.Tensor) -> torch.Tensor:
    return x.pow(2).mean(dim=-1, keepdim=True).sqrt()


def _gain(norm: nn.Module) -> torch.Tensor:
    """The per-channel gain the norm multiplies by: Gemma's RMSNorm uses (1 + weight)."""
    probe = torch.ones(1, norm.weight.shape[0], dtype=norm.weight.dtype, device=norm.weight.device)
    return norm(probe)[0].detach()
