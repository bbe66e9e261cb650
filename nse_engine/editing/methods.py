"""The editing methods one engine runs: NSE, MEMIT (sequential, as MEMIT_seq) and AlphaEdit.

They share the round loop of nse_round.py, the keys, the statistics, Kp and the history; they
differ in three places, all decided here:
- target states: NSE computes them with the original weights (weights rewinding); MEMIT and
  AlphaEdit with the model as it is now, as their papers do;
- the layer solve: NSE's (and MEMIT's) regularised least squares over the selected neurons, or
  AlphaEdit's projection onto the null space of general text's keys;
- their derived settings (derive.py): MEMIT is the loop with every neuron, one pass, even shares,
  β = 1 and no alpha / upper_bound; AlphaEdit the same loop with its own solve.
ENCORE's norm penalty and NAS's norm anchoring are switches that work with any method.
"""

from __future__ import annotations

from typing import Protocol

import torch

from nse_engine.editing.hparams import NseHyperParams
from nse_engine.editing.update import LayerUpdate, solve_layer_update, solve_projected_update


class LayerSolver(Protocol):
    def __call__(self, *, layer: int, keys: torch.Tensor, residuals: torch.Tensor,
                 earlier_stored_keys: torch.Tensor) -> LayerUpdate: ...


def rewinds_targets(hp: NseHyperParams) -> bool:
    """Are target states computed with the original weights (NSE) or the current ones?"""
    return hp.method == "nse"


def update_norm_weight(hp: NseHyperParams) -> float:
    """The weight of ‖ΔW‖² in the solve: the method's own plus ENCORE's when switched on."""
    return hp.update_norm_weight + (hp.encore_norm_weight if hp.encore else 0.0)


def layer_solver(
    hp: NseHyperParams,
    second_moments: dict[int, torch.Tensor],
    kp: dict[int, torch.Tensor],
    projections: dict[int, torch.Tensor],
) -> LayerSolver:
    """The update of one layer for the method of `hp`."""
    norm_weight = update_norm_weight(hp)
    if hp.method == "alphaedit":
        def solve_alphaedit(*, layer: int, keys: torch.Tensor, residuals: torch.Tensor,
                            earlier_stored_keys: torch.Tensor) -> LayerUpdate:
            return solve_projected_update(layer=layer, keys=keys, residuals=residuals, projection=projections[layer],
                                          kp=kp[layer], update_norm_weight=norm_weight)
        return solve_alphaedit

    def solve_nse(*, layer: int, keys: torch.Tensor, residuals: torch.Tensor,
                  earlier_stored_keys: torch.Tensor) -> LayerUpdate:
        return solve_layer_update(
            layer=layer, keys=keys, residuals=residuals, second_moment=second_moments[layer], kp=kp[layer],
            mom2_update_weight=hp.mom2_update_weight, neuron_threshold=hp.neuron_threshold,
            earlier_edits_weight=hp.earlier_edits_weight, earlier_stored_keys=earlier_stored_keys,
            update_norm_weight=norm_weight,
        )
    return solve_nse
