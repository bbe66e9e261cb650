"""The editing methods one engine runs: NSE, MEMIT (sequential, as MEMIT_seq) and AlphaEdit.

They share the round loop of nse_round.py, the keys, the statistics, Kp and the history; each
is one `Method` object, looked up once by its key (`method_for`), that decides where they differ:
- target states: NSE computes them with the original weights (weights rewinding); MEMIT and
  AlphaEdit with the model as it is now, as their papers do;
- preparation: AlphaEdit also needs, per edited layer, the projection onto the null space of
  general text's keys (from C, for the nullspace_threshold in effect);
- the layer solve: NSE's (and MEMIT's) regularised least squares over the selected neurons, or
  AlphaEdit's projected solve;
- their settings (derive.py): MEMIT is the loop with every neuron, one pass, even shares, β = 1
  and no alpha / upper_bound; AlphaEdit the same loop with its own L2 and null-space threshold,
  measured on the model;
- what they hold in memory beyond the shared state (memory_estimate.py), and which settings
  they refuse (`check_settings`).
ENCORE's norm penalty and NAS's norm anchoring are switches that work with any method.
"""

from __future__ import annotations

import math
from typing import Protocol

import torch

from nse_engine.editing.hparams import NseHyperParams
from nse_engine.editing.update import LayerUpdate, solve_layer_update, solve_projected_update
from nse_engine.method_names import METHODS
from nse_engine.stats.nullspace import eigenbasis

# AlphaEdit's L2 as a share of a fact key's energy (median ‖k‖² at the last edited layer): no public
# measurement carries over to other models, so it scales with the keys; 0.2 gives AlphaEdit's
# published L2 of 10 on SmolLM2 (median ‖k‖² 51).
ALPHAEDIT_L2_PER_KEY = 0.2
# AlphaEdit's free directions may carry at most this share of general text's key energy at the
# last edited layer (the paper's absolute 0.02 leaves 19-62 % of it free on SmolLM2's layers 2..8).
NULLSPACE_ENERGY = 0.05


class LayerSolver(Protocol):
    def __call__(self, *, layer: int, keys: torch.Tensor, residuals: torch.Tensor,
                 earlier_stored_keys: torch.Tensor) -> LayerUpdate: ...


class Method(Protocol):
    """What one editing method decides; the rest of the engine asks it instead of testing its key."""

    key: str  # as method_names.METHODS spells it, and projects store it
    rewinds_targets: bool  # target states from the original weights (True) or the current ones

    def check(self, hp: NseHyperParams) -> None:
        """Raise ValueError for settings this method cannot edit with."""

    def adapted(self, nse: NseHyperParams, update_norm_weight: float, nullspace_threshold: float,
                notes: dict[str, str] | None = None) -> NseHyperParams:
        """NSE's settings turned into this method's."""

    def derived(self, nse: NseHyperParams, moment: torch.Tensor, key_norm2: float, layer: int) -> NseHyperParams:
        """NSE's settings derived for a model turned into this method's, measuring what it needs
        on C (`moment`, of `layer`, the last edited one) and the probe keys' median energy."""

    def preparation(self, hp: NseHyperParams) -> float | None:
        """What the method's own prepared tensors depend on (None: it prepares none)."""

    def prepare(self, hp: NseHyperParams, second_moments: dict[int, torch.Tensor],
                device: torch.device) -> dict[int, torch.Tensor]:
        """The method's own tensors per edited layer, made from C once the statistics are known."""

    def layer_solver(self, hp: NseHyperParams, second_moments: dict[int, torch.Tensor], kp: dict[int, torch.Tensor],
                     prepared: dict[int, torch.Tensor]) -> LayerSolver:
        """The update of one layer."""

    def resident_memory(self, n_edited_layers: int, d_ff: int) -> list[tuple[str, int]]:
        """(what, bytes) the method holds beside C and Kp while a project is open."""


def update_norm_weight(hp: NseHyperParams) -> float:
    """The weight of ‖ΔW‖² in the solve: the method's own plus ENCORE's when switched on."""
    return hp.solve.update_norm_weight + (hp.switches.encore_norm_weight if hp.switches.encore else 0.0)


class Nse:
    """Neuron-specific sequential editing: the paper's method, with weights rewinding."""

    key = "nse"
    rewinds_targets = True

    def check(self, hp: NseHyperParams) -> None:
        return None

    def adapted(self, nse: NseHyperParams, update_norm_weight: float, nullspace_threshold: float,
                notes: dict[str, str] | None = None) -> NseHyperParams:
        return nse

    def derived(self, nse: NseHyperParams, moment: torch.Tensor, key_norm2: float, layer: int) -> NseHyperParams:
        return self.adapted(nse, 0.0, nse.solve.nullspace_threshold)

    def preparation(self, hp: NseHyperParams) -> float | None:
        return None

    def prepare(self, hp: NseHyperParams, second_moments: dict[int, torch.Tensor],
                device: torch.device) -> dict[int, torch.Tensor]:
        return {}

    def layer_solver(self, hp: NseHyperParams, second_moments: dict[int, torch.Tensor], kp: dict[int, torch.Tensor],
                     prepared: dict[int, torch.Tensor]) -> LayerSolver:
        norm_weight = update_norm_weight(hp)

        def solve_least_squares(*, layer: int, keys: torch.Tensor, residuals: torch.Tensor,
                                earlier_stored_keys: torch.Tensor) -> LayerUpdate:
            return solve_layer_update(
                layer=layer, keys=keys, residuals=residuals, second_moment=second_moments[layer], kp=kp[layer],
                mom2_update_weight=hp.solve.mom2_update_weight, neuron_threshold=hp.solve.neuron_threshold,
                earlier_edits_weight=hp.solve.earlier_edits_weight, earlier_stored_keys=earlier_stored_keys,
                update_norm_weight=norm_weight,
            )
        return solve_least_squares

    def resident_memory(self, n_edited_layers: int, d_ff: int) -> list[tuple[str, int]]:
        return []


class MemitSeq(Nse):
    """MEMIT applied round after round: NSE's loop with every neuron, one pass, even shares, Kp at
    weight 1, every fact edited (no alpha, no upper_bound), target states from the current weights."""

    key = "memit"
    rewinds_targets = False
    description = "MEMIT_seq: every neuron, one pass, even shares, every fact, Kp at weight 1"

    def adapted(self, nse: NseHyperParams, update_norm_weight: float, nullspace_threshold: float,
                notes: dict[str, str] | None = None) -> NseHyperParams:
        """No extra verification passes (ours, not theirs: each round still checks what the model writes)."""
        loop = self._loop(update_norm_weight, nullspace_threshold)
        replaced = set(loop) | {"alpha_upper_bound"}  # NSE's reasons for values the method replaces do not apply
        kept = {k: v for k, v in nse.notes.items() if k not in replaced}
        return nse.replace(**loop, notes={**kept, "method": self.description, **(notes or {})})

    def _loop(self, update_norm_weight: float, nullspace_threshold: float) -> dict[str, object]:
        return dict(method=self.key, neuron_threshold=1.0, max_iterations=1, layer_share_ratio=1.0, alpha=0.0,
                    upper_bound=math.inf, refresh_drifted=False, verify_passes=0, earlier_edits_weight=1.0,
                    chat_rows=False, chat_subject_weight=0.0)


class AlphaEdit(MemitSeq):
    """MEMIT_seq's loop with each update projected onto the null space of general text's keys."""

    key = "alphaedit"
    description = "AlphaEdit: the MEMIT_seq loop with the update projected onto general text's null space"

    def check(self, hp: NseHyperParams) -> None:
        if hp.passes.refresh_drifted:
            raise ValueError("refresh_drifted is NSE's; AlphaEdit's projected solve cannot pull earlier edits back")

    def _loop(self, update_norm_weight: float, nullspace_threshold: float) -> dict[str, object]:
        return super()._loop(update_norm_weight, nullspace_threshold) | dict(
            update_norm_weight=update_norm_weight, nullspace_threshold=nullspace_threshold)

    def derived(self, nse: NseHyperParams, moment: torch.Tensor, key_norm2: float, layer: int) -> NseHyperParams:
        threshold = eigenbasis(moment).threshold_for_energy(NULLSPACE_ENERGY)
        return self.adapted(nse, round(ALPHAEDIT_L2_PER_KEY * key_norm2, 3), threshold, notes={
            "update_norm_weight": f"AlphaEdit's L2: {ALPHAEDIT_L2_PER_KEY} × median ‖k‖² {key_norm2:.1f}",
            "nullspace_threshold": f"the free directions of layer {layer} carry {NULLSPACE_ENERGY:.0%} of C's energy",
        })

    def preparation(self, hp: NseHyperParams) -> float | None:
        return hp.solve.nullspace_threshold

    def prepare(self, hp: NseHyperParams, second_moments: dict[int, torch.Tensor],
                device: torch.device) -> dict[int, torch.Tensor]:
        """P per layer (d_ff, d_ff) float64, for the nullspace_threshold in effect."""
        return {l: eigenbasis(moment).projection(hp.solve.nullspace_threshold).to(device)
                for l, moment in second_moments.items()}

    def layer_solver(self, hp: NseHyperParams, second_moments: dict[int, torch.Tensor], kp: dict[int, torch.Tensor],
                     prepared: dict[int, torch.Tensor]) -> LayerSolver:
        norm_weight = update_norm_weight(hp)

        def solve_projected(*, layer: int, keys: torch.Tensor, residuals: torch.Tensor,
                            earlier_stored_keys: torch.Tensor) -> LayerUpdate:
            return solve_projected_update(layer=layer, keys=keys, residuals=residuals, projection=prepared[layer],
                                          kp=kp[layer], update_norm_weight=norm_weight)
        return solve_projected

    def resident_memory(self, n_edited_layers: int, d_ff: int) -> list[tuple[str, int]]:
        return [("AlphaEdit projections (float64)", n_edited_layers * d_ff * d_ff * 8)]


_METHODS: dict[str, Method] = {m.key: m for m in (Nse(), MemitSeq(), AlphaEdit())}  # in METHODS' order


def method_for(key: str) -> Method:
    """The method a project's settings name ("nse", "memit", "alphaedit")."""
    try:
        return _METHODS[key]
    except KeyError:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {key!r}") from None


def check_settings(hp: NseHyperParams, n_layers: int) -> None:
    """Every check of settings before they edit a model of `n_layers` blocks: their own
    (NseHyperParams.validate) and their method's; ValueError names what is wrong."""
    hp.validate(n_layers)
    method_for(hp.method).check(hp)
