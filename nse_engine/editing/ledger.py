"""The edited layers' history: original weights, the accumulated update S and Kp, round by round.

Invariant: for every edited layer l, W_l == cast(W_l_original + S_l), where S_l (float64) is
the sum of every committed update in commit order, and Kp_l == Σ Kᵀ K over the keys of every
committed round. Both are rebuilt from the stored rounds by the same sequence of operations,
so undo and resume reproduce the weights bit for bit.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

import torch

from nse_engine.editing.update import LayerUpdate
from nse_engine.facts import EditRequest, FactOutcome
from nse_engine.model.architecture import EditPoints


@dataclass
class EditRound:
    """One committed round: its requests, outcomes, updates (in order) and the keys it adds to Kp."""

    requests: list[EditRequest]
    outcomes: list[FactOutcome]
    updates: list[LayerUpdate]
    keys: dict[int, torch.Tensor]  # layer -> (n_applied, d_ff) float32, added to Kp
    editing_passes: int
    hparams: dict[str, object]
    seconds_by_phase: dict[str, float] = field(default_factory=dict)
    targets: torch.Tensor | None = None  # (n_applied, hidden) float32 z of the applied facts
    refreshed: list[str] = field(default_factory=list)  # earlier facts (prompt texts) pulled back

    @property
    def applied(self) -> list[FactOutcome]:
        return [o for o in self.outcomes if o.applied]


class WeightLedger:
    """Owns the edited matrices of one model: what they were, what was added, and Kp."""

    def __init__(
        self, points: EditPoints, layers: tuple[int, ...], solve_device: torch.device,
        kp_dtype: torch.dtype = torch.float64,
    ) -> None:
        self.points = points
        self.layers = layers
        self.solve_device = solve_device
        self.rounds: list[EditRound] = []
        # Original weights of every edited matrix, as (hidden, d_ff), on the CPU.
        self.original = {l: points.weight_view(l).detach().to("cpu", copy=True) for l in layers}
        self.offsets = {l: torch.zeros(self.original[l].shape, dtype=torch.float64) for l in layers}  # S
        self.kp = {
            l: torch.zeros((points.d_ff, points.d_ff), dtype=kp_dtype, device=solve_device) for l in layers
        }  # Kp = Σ kᵀk of committed edits, (d_ff, d_ff); summed in float64, stored in kp_dtype

    @property
    def n_edits(self) -> int:
        return sum(len(r.keys[self.layers[0]]) for r in self.rounds)

    def write_weights(self, layer: int, offset: torch.Tensor, neurons: torch.Tensor | None = None) -> None:
        """W[:, neurons] = cast(original + offset) for one layer (all neurons when None)."""
        view = self.points.weight_view(layer)
        with torch.no_grad():
            if neurons is None:
                view.copy_((self.original[layer].double() + offset).to(view.dtype))
            else:
                cols = (self.original[layer][:, neurons].double() + offset[:, neurons]).to(view.dtype)
                view[:, neurons.to(view.device)] = cols.to(view.device)

    def write_committed(self, layers: set[int] | tuple[int, ...] | None = None) -> None:
        """Put the committed weights back (after a failed or cancelled round touched them)."""
        for layer in self.layers if layers is None else layers:
            self.write_weights(layer, self.offsets[layer])

    @contextmanager
    def original_weights(self) -> Iterator[None]:
        """Temporarily the unedited model (weights rewinding; "compare with original")."""
        with torch.no_grad():
            for layer in self.layers:
                self.points.weight_view(layer).copy_(self.original[layer])
        try:
            yield
        finally:
            self.write_committed()

    def commit(self, record: EditRound) -> None:
        self._replay(record)
        self.write_committed()
        self.rounds.append(record)

    def pop(self) -> EditRound:
        """Remove the last round: weights and Kp become exactly what they were before it."""
        removed = self.rounds.pop()
        self.rebuild()
        return removed

    def push_back(self, record: EditRound) -> None:
        """Put back a round removed by `pop` (when recording the undo failed)."""
        self.rounds.append(record)
        self.rebuild()

    def rebuild(self) -> None:
        """S, Kp and the weights from the stored rounds alone: resume and undo."""
        for layer in self.layers:
            self.offsets[layer].zero_()
            self.kp[layer].zero_()
        for record in self.rounds:
            self._replay(record)
        self.write_committed()

    def _replay(self, record: EditRound) -> None:
        """Add one round to S and Kp: the single code path for commit, resume and undo."""
        round_offset = {l: torch.zeros_like(self.offsets[l]) for l in self.layers}
        for update in record.updates:
            round_offset[update.layer][:, update.neurons] += update.delta()
        for layer in self.layers:
            self.offsets[layer] += round_offset[layer]
            keys = record.keys[layer].to(self.solve_device, torch.float64)  # (n, d_ff)
            self.kp[layer] += keys.T @ keys
