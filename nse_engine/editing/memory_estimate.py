"""Peak memory per device for loading and editing a model, estimated from its shape alone.

The shape comes from config.json on PyTorch's meta device (model/shape.py), so the estimate needs
no weights and takes a fraction of a second even for a 70B model. It adds up what the engine
actually holds, phase by phase, with the editing and statistics defaults it is sized for
imported from where they are set:

- resident: the weights (per device, as accelerate would place them), the runtime (Python,
  torch and the tokenizer; the CUDA context), the edited layers' originals and accumulated
  updates S (float64, on the CPU; ledger.py), and C and Kp, d_ff² each per edited layer
  (where the placement puts them, float64 by default; session.py prepare, ledger.py);
- statistics (session.prepare → second_moment.py): one batch of activations through the
  blocks up to the last edited layer, the float32 partial sums of kᵀk on the device, the
  float64 totals and moments on the CPU, and the buffers of the cache write;
- target states (target_state.py): rows = facts × (context prefixes + 2) in chunks of at most
  CHUNK_FACTS facts, autograd activations of the blocks above the last edited layer on the suffix
  tokens, and the vocabulary-sized log-softmax at the scored positions;
- layer updates (nse_round.py, update.py): the float64 solve of one layer over up to d_ff
  neurons, the round's float64 offsets on the CPU, and the layer-by-layer trace.

The peak of a device is its resident memory plus its largest phase (memory_plan.py chooses the
placement whose peaks fit). benchmarks/memory_plan_check.py compares the estimate with measured peaks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from nse_engine.editing.hparams import NseHyperParams, Preparation
from nse_engine.editing.methods import method_for
from nse_engine.editing.target_state import CHUNK_FACTS
from nse_engine.model.devices import CPU, Device, dtype_name
from nse_engine.model.shape import ModelShape
from nse_engine.stats.second_moment import StatsSpec

GIB = 2**30
# Resident set of Python with torch, transformers and the engine imported (measured: 0.33 GiB).
CPU_RUNTIME_BYTES = int(0.35 * GIB)
# What a fast tokenizer holds per vocabulary entry (measured: Gemma 3's 262k entries, 320 MiB).
TOKENIZER_BYTES_PER_TOKEN = 1280
CUDA_CONTEXT_BYTES = int(0.5 * GIB)
# Allocator slack and fragmentation on top of what a phase's short-lived tensors need.
SLACK = 1.10
PROMPT_TOKENS = 16  # a fact's prompt with the subject, BOS included (dev facts: 9–20)
PREFIX_TOKENS = Preparation.context_prefix_tokens  # length of each generated context prefix
TARGET_TOKENS = 3  # tokens of a new object
SUFFIX_TOKENS = 10  # from the subject's last token to the end of a row
ACTIVATION_FACTOR = 1.25  # autograd's saved tensors plus the gradients alive during backward
PHASES = ("statistics", "target states", "layer updates")


@dataclass(frozen=True)
class EditingLoad:
    """The work the plan must fit: which layers are edited, how many facts per round."""

    layers: tuple[int, ...]
    batch_size: int = 10  # facts per round
    context_prefixes: int = Preparation.context_prefixes
    stats_batch_size: int = StatsSpec.batch_size  # sequences per statistics forward pass
    stats_seq_len: int = StatsSpec.seq_len
    method: str = NseHyperParams.method


@dataclass(frozen=True)
class Placement:
    """Where the editing state lives: the choices a plan makes and the editing code honours."""

    state_device: str  # where C and Kp live and the layer solve runs
    state_dtype: torch.dtype = torch.float64  # of C and Kp as stored (the solve is float64)
    stats_layers_per_pass: int = 0  # edited layers whose statistics one corpus pass sums; 0 = all
    stats_batch_size: int = StatsSpec.batch_size

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
    for what, n_bytes in method_for(load.method).resident_memory(n_edit, s.d_ff):
        add("resident", what, placement.state_device, n_bytes)

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
    facts = min(load.batch_size, CHUNK_FACTS)
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

