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

GAIN_FLOOR = 1e-3  # a channel whose gain is below this share of the largest one is treated as closed


@torch.no_grad()
def value_change_for(residual: torch.Tensor, value: torch.Tensor, norm: nn.Module) -> torch.Tensor:
    """The change of the MLP output `value` (n, hidden) after which `norm` of it moves by `residual`
    (n, hidden); float64 like the inputs' solve.

    Channels whose gain is (near) zero carry nothing to the residual stream whatever v holds
    there (Gemma 3 has such channels): they are left as they are, and the scale is kept over
    the other channels.
    """
    device, dtype = residual.device, torch.float64
    parameter = next(norm.parameters())
    value = value.to(device, dtype)
    current = norm(value.to(parameter.device, parameter.dtype)).to(device, dtype)  # (n, hidden)
    wanted = current + residual.to(dtype)  # (n, hidden)
    gain = _gain(norm).to(device, dtype)  # (hidden,)
    live = gain.abs() > GAIN_FLOOR * gain.abs().max()  # (hidden,)
    direction = wanted[:, live] / gain[live]  # (n, live): any positive multiple normalises to `wanted`
    scale = value[:, live].pow(2).sum(1, keepdim=True).sqrt() / direction.pow(2).sum(1, keepdim=True).sqrt().clamp_min(1e-30)
    change = torch.zeros_like(value)
    change[:, live] = direction * scale - value[:, live]
    return change


def _gain(norm: nn.Module) -> torch.Tensor:
    """The per-channel gain the norm multiplies by: Gemma's RMSNorm uses (1 + weight)."""
    probe = torch.ones(1, norm.weight.shape[0], dtype=norm.weight.dtype, device=norm.weight.device)
    return norm(probe)[0].detach()
