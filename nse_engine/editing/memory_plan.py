"""The memory plan: the first placement of the editing state whose estimated peaks fit this
machine's devices (memory_estimate.py adds them up), shown in `nse info` and on the Model screen,
and refused with the numbers when none fits.

When the straightforward placement does not fit, `plan_memory` tries, in order: C and Kp on the
CPU in float64, then in float32, the statistics one layer per pass, a smaller statistics batch;
if none fits it says what is missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import torch

from nse_engine.editing.memory_estimate import GIB, PHASES, SLACK, EditingLoad, MemoryItem, Placement, estimate
from nse_engine.errors import InsufficientMemoryError
from nse_engine.model.architecture import EditPoints
from nse_engine.model.devices import CPU, Device, devices_holding, dtype_name
from nse_engine.model.loading import LoadedModel
from nse_engine.model.placement import place_weights, placed_units
from nse_engine.model.shape import ModelShape, shape_of


def plan_for_loaded(loaded: LoadedModel, points: EditPoints, layers: tuple[int, ...], batch_size: int = 10) -> MemoryPlan:
    """The plan for editing `layers` of a loaded model, on this machine's devices and where its
    weights actually are."""
    placed = placed_units(loaded.model, points)
    return plan_memory(shape_of(loaded.model, points), loaded.dtype, devices_holding(placed),
                       EditingLoad(tuple(layers), batch_size=batch_size), weights_map=placed)


@dataclass
class MemoryPlan:
    """The estimate for one model, dtype, machine and editing load, with the placement chosen."""

    shape: ModelShape
    dtype: torch.dtype
    devices: tuple[Device, ...]
    load: EditingLoad
    placement: Placement
    device_map: dict[str, str]  # top-level module -> device, as accelerate would place it
    items: list[MemoryItem]
    tried: list[str] = field(default_factory=list)  # placements that did not fit, in order

    def peak(self, device: str) -> int:
        """Resident memory plus the largest phase, with allocator slack on the phase's
        short-lived tensors."""
        resident = sum(i.bytes for i in self.items if i.device == device and i.phase == "resident")
        phases = [sum(i.bytes for i in self.items if i.device == device and i.phase == p) for p in PHASES]
        return int(resident + max(phases) * SLACK)

    @property
    def peaks(self) -> dict[str, int]:
        return {d.name: self.peak(d.name) for d in self.devices}

    @property
    def shortfalls(self) -> dict[str, int]:
        """Devices whose peak exceeds their capacity, and by how much."""
        return {d.name: self.peak(d.name) - d.capacity for d in self.devices if self.peak(d.name) > d.capacity}

    @property
    def fits(self) -> bool:
        return not self.shortfalls

    def by_phase(self, device: str) -> dict[str, int]:
        return {phase: sum(i.bytes for i in self.items if i.device == device and i.phase == phase)
                for phase in ("resident", *PHASES)}

    def lines(self) -> list[str]:
        """A few lines for `nse info` and the Model screen."""
        out = [f"editing layers {self.load.layers[0]}–{self.load.layers[-1]}, {self.load.batch_size} facts per round, "
               f"weights in {dtype_name(self.dtype)}; {self.placement.describe()}"]
        for d in self.devices:
            phases = self.by_phase(d.name)
            if not any(phases.values()):
                out.append(f"{d.name}: unused ({d.capacity / GIB:.1f} GiB)")
                continue
            detail = ", ".join(f"{name} {b / GIB:.1f}" for name, b in phases.items() if b)
            verdict = "fits" if self.peak(d.name) <= d.capacity else "DOES NOT FIT"
            out.append(f"{d.name}: peak {self.peak(d.name) / GIB:.1f} of {d.capacity / GIB:.1f} GiB, {verdict} "
                       f"({detail} GiB)")
        return out

    def summary(self) -> dict[str, object]:
        """Plain data for `nse info --json` and the Model screen."""
        return {
            "fits": self.fits,
            "placement": self.placement.describe(),
            "peak_gib": {name: round(b / GIB, 2) for name, b in self.peaks.items()},
            "capacity_gib": {d.name: round(d.capacity / GIB, 2) for d in self.devices},
            "lines": self.lines(),
        }

    def require_fit(self) -> None:
        """Refuse, with the numbers and what to do, when no placement fits."""
        if self.fits:
            return
        short = "; ".join(f"{name} needs {(self.peak(name)) / GIB:.1f} GiB of {_capacity(self, name) / GIB:.1f}"
                          for name in self.shortfalls)
        raise InsufficientMemoryError(
            f"{self.shape.architecture} ({self.shape.n_params / 1e9:.2f} B parameters) cannot be edited here: "
            f"{short}, even with {self.placement.describe()}. Edit fewer facts per round (--batch-size) or "
            "fewer layers, use a lower-precision dtype, or more GPU memory (several GPUs: --device-map balanced)."
        )


def _capacity(plan: MemoryPlan, name: str) -> int:
    return next(d.capacity for d in plan.devices if d.name == name)


# ---- choosing the placement ---------------------------------------------------------------


def plan_memory(
    shape: ModelShape,
    dtype: torch.dtype,
    devices: Iterable[Device],
    load: EditingLoad,
    placement: Placement | None = None,
    weights_map: dict[str, str] | None = None,
) -> MemoryPlan:
    """The first plan that fits, with its estimate: the weights on one GPU, else balanced over
    all of them (or as `weights_map` places them); for each, the placements of `_candidates`
    in order (or `placement` as given).

    Without a fitting plan the last one tried is returned; `require_fit` refuses with it.
    """
    devices = tuple(devices)
    gpus = tuple(d for d in devices if d.is_gpu)
    cpu = tuple(d for d in devices if not d.is_gpu)
    if weights_map is not None:
        maps = [weights_map]
    else:
        maps = [place_weights(shape, gpus[:1] + cpu)] + ([place_weights(shape, devices)] if len(gpus) > 1 else [])
    tried: list[str] = []
    plan = None
    for placed in maps:
        edit_device = placed[f"{shape.blocks_path}.{load.layers[0]}"]
        for candidate in [placement] if placement else _candidates(edit_device, load):
            plan = MemoryPlan(shape, dtype, devices, load, candidate, placed,
                              estimate(shape, dtype, devices, load, candidate, placed), tried=list(tried))
            if plan.fits:
                return plan
            spread = len(set(placed.values()))
            tried.append(f"{candidate.describe()} ({'weights on one device' if spread == 1 else f'weights over {spread} GPUs'})")
    return plan  # type: ignore[return-value]


def _candidates(edit_device: str, load: EditingLoad) -> list[Placement]:
    """From fastest to leanest: C and Kp beside the weights, then on the CPU in float64 and
    float32, then the statistics one layer per pass, then in smaller batches."""
    batch = load.stats_batch_size
    # The float64 solve runs beside the weights only on CUDA; MPS has no float64.
    plans = [Placement(edit_device, torch.float64, 0, batch)] if edit_device.startswith("cuda") else []
    plans.append(Placement(CPU, torch.float64, 0, batch))
    plans += [
        Placement(CPU, torch.float32, 0, batch),
        Placement(CPU, torch.float32, 1, batch),
        Placement(CPU, torch.float32, 1, max(1, batch // 4)),
    ]
    return plans
