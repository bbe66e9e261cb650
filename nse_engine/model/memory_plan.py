"""Peak memory per device for loading and editing a model, estimated from its config.json alone.

The model is built on PyTorch's meta device (shapes, no storage), so the estimate needs no
weights and takes a fraction of a second even for a 70B model. It adds up what the engine
actually holds, phase by phase:

- resident: the weights (per device, as accelerate would place them), the runtime (Python,
  torch and the tokenizer; the CUDA context), the edited layers' originals and accumulated
  updates S (float64, on the CPU; ledger.py), and C and Kp, d_ff² each per edited layer
  (where the placement puts them, float64 by default; session.py prepare, ledger.py);
- statistics (session.prepare → second_moment.py): one batch of activations through the
  blocks up to the last edited layer, the float32 partial sums of kᵀk on the device, the
  float64 totals and moments on the CPU, and the buffers of the cache write;
- target states (target_state.py): rows = facts × (context prefixes + 2) in chunks of at most
  32 facts, autograd activations of the blocks above the last edited layer on the suffix
  tokens, and the vocabulary-sized log-softmax at the scored positions;
- layer updates (nse_round.py, update.py): the float64 solve of one layer over up to d_ff
  neurons, the round's float64 offsets on the CPU, and the layer-by-layer trace.

The peak of a device is its resident memory plus its largest phase. When the straightforward
placement does not fit, `plan_memory` tries, in order: C and Kp on the CPU in float64, then in
float32, the statistics one layer per pass, a smaller statistics batch; if none fits it says
what is missing. benchmarks/memory_plan_check.py compares the estimate with measured peaks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable

import torch
from transformers import AutoModelForCausalLM, PretrainedConfig

from nse_engine.errors import InsufficientMemoryError
from nse_engine.model.architecture import EditPoints, find_edit_points
from nse_engine.model.device import dtype_name

if TYPE_CHECKING:
    from nse_engine.model.loading import LoadedModel

GIB = 2**30
CPU = "cpu"
# Resident set of Python with torch, transformers and the engine imported (measured: 0.33 GiB).
CPU_RUNTIME_BYTES = int(0.35 * GIB)
# What a fast tokenizer holds per vocabulary entry (measured: Gemma 3's 262k entries, 320 MiB).
TOKENIZER_BYTES_PER_TOKEN = 1280
CUDA_CONTEXT_BYTES = int(0.5 * GIB)
# Allocator slack and fragmentation on top of what a phase's short-lived tensors need.
SLACK = 1.10
TARGET_CHUNK_FACTS = 32  # compute_target_states' chunk_size
PROMPT_TOKENS = 16  # a fact's prompt with the subject, BOS included (dev facts: 9–20)
PREFIX_TOKENS = 8  # hparams.context_prefix_tokens
TARGET_TOKENS = 3  # tokens of a new object
SUFFIX_TOKENS = 10  # from the subject's last token to the end of a row
ACTIVATION_FACTOR = 1.25  # autograd's saved tensors plus the gradients alive during backward
PHASES = ("statistics", "target states", "layer updates")


@dataclass(frozen=True)
class Device:
    """A device and the bytes it can give the engine."""

    name: str  # "cpu", "cuda:0", "mps"
    capacity: int

    @property
    def is_gpu(self) -> bool:
        return self.name != CPU


@dataclass(frozen=True)
class ModelShape:
    """What the estimate needs to know about a model, read from its config on the meta device."""

    architecture: str
    n_layers: int
    hidden: int
    d_ff: int
    vocab: int
    n_heads: int
    kv_width: int  # key/value heads × head dim
    n_params: int
    block_params: tuple[int, ...]  # parameters of each transformer block
    blocks_path: str
    units: dict[str, int] = field(repr=False, compare=False, default_factory=dict)  # placement unit -> parameters, in forward order

    @property
    def other_params(self) -> int:
        """Embeddings, final norm and LM head: everything outside the blocks."""
        return self.n_params - sum(self.block_params)


def model_shape(config: PretrainedConfig) -> ModelShape:
    """Build the model on the meta device and measure it (no weights are read or allocated)."""
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    points = find_edit_points(model)
    return _shape(model, points)


def plan_for_loaded(loaded: LoadedModel, points: EditPoints, layers: tuple[int, ...], batch_size: int = 10) -> MemoryPlan:
    """The plan for editing `layers` of a loaded model, on this machine's devices and where its
    weights actually are."""
    import psutil

    shape = _shape(loaded.model, points)
    placed = {}
    for name, tensor in [*loaded.model.named_parameters(), *loaded.model.named_buffers()]:
        device = tensor.device
        placed.setdefault(_unit(name, points.blocks_path), CPU if device.type in ("cpu", "meta") else str(device))
    gpus = sorted(set(placed.values()) - {CPU})
    devices = (*(Device(g, _total_memory(torch.device(g))) for g in gpus), Device(CPU, int(psutil.virtual_memory().total)))
    return plan_memory(shape, loaded.dtype, devices, EditingLoad(tuple(layers), batch_size=batch_size),
                       weights_map=placed)


def _total_memory(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.get_device_properties(device).total_memory)
    if device.type == "mps":
        return int(torch.mps.recommended_max_memory())
    return 0


def _unit(tensor_name: str, blocks_path: str) -> str:
    """The module a tensor is placed with: its block, else the module that owns it."""
    if tensor_name.startswith(blocks_path + "."):
        return ".".join(tensor_name.split(".")[: blocks_path.count(".") + 2])
    return tensor_name.rpartition(".")[0] or tensor_name


def _shape(model: torch.nn.Module, points: EditPoints) -> ModelShape:
    config = model.config
    n_heads = int(getattr(config, "num_attention_heads", None) or getattr(config, "n_head", 1))
    head_dim = int(getattr(config, "head_dim", None) or points.hidden_size // n_heads)
    kv_heads = int(getattr(config, "num_key_value_heads", None) or n_heads)
    units: dict[str, int] = {}  # placement unit (a block, the embeddings, the head...) -> parameters
    tensors = [(name, p.numel()) for name, p in model.named_parameters()]  # tied weights are listed once
    tensors += [(name, 0) for name, _ in model.named_buffers()]  # placed too, but not weights that count
    for name, numel in tensors:
        unit = _unit(name, points.blocks_path)
        units[unit] = units.get(unit, 0) + numel
    blocks = tuple(sum(p.numel() for p in block.parameters()) for block in points.blocks)
    return ModelShape(
        architecture=points.architecture,
        n_layers=points.n_layers,
        hidden=points.hidden_size,
        d_ff=points.d_ff,
        vocab=int(points.lm_head.weight.shape[0]),
        n_heads=n_heads,
        kv_width=kv_heads * head_dim,
        n_params=sum(units.values()),
        block_params=blocks,
        blocks_path=points.blocks_path,
        units=units,
    )


@dataclass(frozen=True)
class EditingLoad:
    """The work the plan must fit: which layers are edited, how many facts per round."""

    layers: tuple[int, ...]
    batch_size: int = 10  # facts per round
    context_prefixes: int = 5
    stats_batch_size: int = 16  # sequences per statistics forward pass
    stats_seq_len: int = 128
    method: str = "nse"


@dataclass(frozen=True)
class Placement:
    """Where the editing state lives: the choices a plan makes and the editing code honours."""

    state_device: str  # where C and Kp live and the layer solve runs
    state_dtype: torch.dtype = torch.float64  # of C and Kp as stored (the solve is float64)
    stats_layers_per_pass: int = 0  # edited layers whose statistics one corpus pass sums; 0 = all
    stats_batch_size: int = 16

    def describe(self) -> str:
        per_pass = "all layers in one pass" if not self.stats_layers_per_pass else (
            f"{self.stats_layers_per_pass} layer per pass")
        return (f"C and Kp on {self.state_device} in {dtype_name(self.state_dtype)}; statistics {per_pass}, "
                f"batch {self.stats_batch_size}")


@dataclass(frozen=True)
class MemoryItem:
    phase: str  # "resident" or one of PHASES
    what: str
    device: str
    bytes: int


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


# ---- the estimate ----------------------------------------------------------------------------


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


def estimate(
    shape: ModelShape,
    dtype: torch.dtype,
    devices: tuple[Device, ...],
    load: EditingLoad,
    placement: Placement,
    weights_map: dict[str, str],
) -> list[MemoryItem]:
    """Every allocation the engine makes that scales with the model, per phase and device."""
    s = shape
    wb = dtype.itemsize
    n_edit = len(load.layers)
    d2 = s.d_ff * s.d_ff
    items: list[MemoryItem] = []

    def add(phase: str, what: str, device: str, n_bytes: float) -> None:
        """Record an allocation, adding it to an earlier one of the same kind on the same device."""
        if n_bytes <= 0:
            return
        for k, item in enumerate(items):
            if (item.phase, item.what, item.device) == (phase, what, device):
                items[k] = MemoryItem(phase, what, device, item.bytes + int(n_bytes))
                return
        items.append(MemoryItem(phase, what, device, int(n_bytes)))

    # ---- resident -----------------------------------------------------------------------
    per_device: dict[str, int] = {}
    for name, device in weights_map.items():
        per_device[device] = per_device.get(device, 0) + s.units[name]
    for device, n in per_device.items():
        add("resident", "weights", device, n * wb)
    add("resident", "runtime and tokenizer", CPU, CPU_RUNTIME_BYTES + s.vocab * TOKENIZER_BYTES_PER_TOKEN)
    for name in sorted(set(weights_map.values()) - {CPU}):
        add("resident", "CUDA context", name, CUDA_CONTEXT_BYTES)
    edit_device = weights_map[f"{s.blocks_path}.{load.layers[0]}"]
    matrix = s.hidden * s.d_ff
    add("resident", "edited layers' originals", CPU, n_edit * matrix * wb)
    add("resident", "accumulated updates S (float64)", CPU, n_edit * matrix * 8)
    sb = placement.state_dtype.itemsize
    add("resident", f"C and Kp ({dtype_name(placement.state_dtype)})", placement.state_device, 2 * n_edit * d2 * sb)
    if load.method == "alphaedit":
        add("resident", "AlphaEdit projections (float64)", placement.state_device, n_edit * d2 * 8)

    # ---- statistics -----------------------------------------------------------------------
    per_pass = placement.stats_layers_per_pass or n_edit
    tokens = placement.stats_batch_size * load.stats_seq_len
    act_per_token = 4 * s.hidden + 4 * s.d_ff + s.n_heads * load.stats_seq_len
    add("statistics", "one batch of activations", edit_device, tokens * act_per_token * wb + tokens * s.d_ff * 4)
    add("statistics", "partial sums kᵀk (float32)", edit_device, per_pass * d2 * 4)
    # The float64 totals of one pass, and its moments until they are stored as C (with C kept on
    # the CPU in float64 they are C itself), and the cache write's copies.
    stored_as_is = placement.state_device == CPU and placement.state_dtype == torch.float64
    add("statistics", "float64 totals and moments", CPU, (1 if stored_as_is else 2) * per_pass * d2 * 8)
    add("statistics", "cache write", CPU, 2 * d2 * 8)

    # ---- target states ----------------------------------------------------------------------
    facts = min(load.batch_size, TARGET_CHUNK_FACTS)
    rows = facts * (load.context_prefixes + 2)
    row_len = PROMPT_TOKENS + PREFIX_TOKENS + TARGET_TOKENS
    saved_per_token = 5 * s.hidden + 4 * s.d_ff + s.n_heads * row_len
    for i in range(load.layers[-1] + 1, s.n_layers):  # autograd keeps the blocks above the last edited layer
        add("target states", "autograd activations of the upper blocks", weights_map[f"{s.blocks_path}.{i}"],
            rows * SUFFIX_TOKENS * saved_per_token * wb * ACTIVATION_FACTOR)
    add("target states", "key/value cache", edit_device, rows * row_len * s.n_layers * 2 * s.kv_width * wb)
    scored = facts * (load.context_prefixes + 1) * TARGET_TOKENS + facts
    head_device = list(weights_map.values())[-1]
    add("target states", "log-softmax over the vocabulary", head_device,
        scored * s.vocab * (wb + 3 * 4) + facts * s.vocab * 4 * 2)

    # ---- layer updates ----------------------------------------------------------------------
    trace_rows = load.batch_size * (load.context_prefixes + 1)
    add("layer updates", "layer-by-layer trace", edit_device,
        (n_edit + 1) * trace_rows * (PROMPT_TOKENS + PREFIX_TOKENS) * (s.hidden + s.d_ff) * wb)
    # C_SS and Kp_SS are gathered in the stored dtype, the system and its factor are float64.
    add("layer updates", "float64 solve of one layer", placement.state_device, s.d_ff * s.d_ff * sb + 3 * d2 * 8)
    add("layer updates", "the round's offsets (float64)", CPU, n_edit * matrix * 8 + 2 * matrix * 8)
    return items

