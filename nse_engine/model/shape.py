"""What the memory plan needs to know about a model: its sizes, measured on PyTorch's meta device
from config.json alone (shapes, no storage), so no weights are read even for a 70B model."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from transformers import AutoModelForCausalLM, PretrainedConfig

from nse_engine.model.architecture import EditPoints, find_edit_points


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
    return shape_of(model, points)


def placement_unit(tensor_name: str, blocks_path: str) -> str:
    """The module a tensor is placed with: its block, else the module that owns it."""
    if tensor_name.startswith(blocks_path + "."):
        return ".".join(tensor_name.split(".")[: blocks_path.count(".") + 2])
    return tensor_name.rpartition(".")[0] or tensor_name


def shape_of(model: torch.nn.Module, points: EditPoints) -> ModelShape:
    """The shape of a model that is built already (on the meta device or loaded)."""
    config = model.config
    n_heads = int(getattr(config, "num_attention_heads", None) or getattr(config, "n_head", 1))
    head_dim = int(getattr(config, "head_dim", None) or points.hidden_size // n_heads)
    kv_heads = int(getattr(config, "num_key_value_heads", None) or n_heads)
    units: dict[str, int] = {}  # placement unit (a block, the embeddings, the head...) -> parameters
    tensors = [(name, p.numel()) for name, p in model.named_parameters()]  # tied weights are listed once
    tensors += [(name, 0) for name, _ in model.named_buffers()]  # placed too, but not weights that count
    for name, numel in tensors:
        unit = placement_unit(name, points.blocks_path)
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
