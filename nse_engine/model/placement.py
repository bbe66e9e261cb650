"""Models larger than one GPU: accelerate device maps, and which blocks can be edited in place.

`--device-map auto` lets accelerate place the model (it may offload blocks to the CPU or disk
when the GPUs are full); `balanced` spreads it evenly over every GPU, `balanced:0,2` over the
GPUs named, with the memory plan's own placement so the plan and the model agree. A block
that accelerate offloaded keeps its weights off any compute device (its parameters are on
the meta device and are copied in for each forward), so an edit written into it would be
lost: editing such a block is refused.
"""

from __future__ import annotations

import torch
from torch import nn

from nse_engine.errors import InsufficientMemoryError, ModelLoadError
from nse_engine.model.architecture import EditPoints
from nse_engine.model.devices import CPU, Device
from nse_engine.model.shape import ModelShape, placement_unit

DEVICE_MAP_CHOICES = ("auto", "balanced", "balanced:<gpu,gpu,...>")
OFFLOADED = ("cpu", "disk", "meta")


def place_weights(shape: ModelShape, devices: tuple[Device, ...]) -> dict[str, str]:
    """Placement unit → device: everything on the one GPU (else the CPU), or the units spread in
    forward order over several GPUs, each taking an even share of the parameters (accelerate's
    "balanced"); `load_model` passes this map to from_pretrained, so the plan is the placement."""
    gpus = [d.name for d in devices if d.is_gpu]
    if len(gpus) <= 1:
        return dict.fromkeys(shape.units, gpus[0] if gpus else CPU)
    share = shape.n_params / len(gpus)
    placed: dict[str, str] = {}
    used = 0
    for name, size in shape.units.items():
        placed[name] = gpus[min(len(gpus) - 1, int((used + size / 2) // share))]
        used += size
    return placed


def placed_units(model: nn.Module, points: EditPoints) -> dict[str, str]:
    """Placement unit → device, as a loaded model's weights are (offloaded ones count as the CPU's)."""
    placed: dict[str, str] = {}
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        device = tensor.device
        placed.setdefault(placement_unit(name, points.blocks_path), CPU if device.type in ("cpu", "meta") else str(device))
    return placed


def parse_gpu_list(device_map: str) -> list[int] | None:
    """The GPU indices of "balanced:0,1"; None for "balanced" (every visible GPU)."""
    _, _, listed = device_map.partition(":")
    if not listed:
        return None
    try:
        gpus = sorted({int(part) for part in listed.split(",") if part.strip()})
    except ValueError:
        raise ModelLoadError(f"--device-map {device_map!r}: name GPUs by number, e.g. balanced:0,1.") from None
    if not gpus:
        raise ModelLoadError(f"--device-map {device_map!r} names no GPU.")
    return gpus


def check_device_map(device_map: str) -> None:
    if device_map != "auto" and device_map.split(":")[0] != "balanced":
        raise ModelLoadError(f"--device-map {device_map!r} is not one of {', '.join(DEVICE_MAP_CHOICES)}.")


def offloaded_blocks(model: nn.Module, points: EditPoints) -> dict[int, str]:
    """Blocks whose weights do not stay on a compute device: block index -> where they are."""
    device_map: dict[str, object] = getattr(model, "hf_device_map", None) or {}
    on_gpu = any(_is_gpu(d) for d in device_map.values())
    found: dict[int, str] = {}
    for i, block in enumerate(points.blocks):
        name = f"{points.blocks_path}.{i}"
        placed = _placed(device_map, name)
        if placed == "disk" or (placed == "cpu" and on_gpu):
            found[i] = str(placed)
        elif any(p.device.type == "meta" for p in block.parameters()):
            found[i] = "meta"
    return found


def require_editable(model: nn.Module, points: EditPoints, layers: tuple[int, ...] | list[int]) -> None:
    """Refuse to edit layers whose weights were offloaded, saying how to keep them on a GPU."""
    offloaded = offloaded_blocks(model, points)
    bad = [layer for layer in layers if layer in offloaded]
    if not bad:
        return
    where = sorted({offloaded[layer] for layer in bad})
    raise InsufficientMemoryError(
        f"The edited layers {', '.join(map(str, bad))} were offloaded to {' and '.join(where)} when the model "
        "was loaded, so an edit could not be written into them. Keep them on a GPU: load with "
        "--device-map balanced over enough GPUs, a lower-precision --dtype, or free GPU memory; "
        "offloading only the blocks above the edited ones is fine."
    )


def _placed(device_map: dict[str, object], module: str) -> object | None:
    """Where `module` went: its own entry or that of the nearest enclosing module."""
    name = module
    while True:
        if name in device_map:
            return device_map[name]
        if not name:
            return None
        name = name.rpartition(".")[0]


def _is_gpu(device: object) -> bool:
    if isinstance(device, int):
        return True
    if isinstance(device, torch.device):
        return device.type not in ("cpu", "meta")
    return str(device) not in OFFLOADED
