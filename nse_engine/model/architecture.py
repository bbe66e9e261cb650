"""Finding the modules NSE edits in any decoder-only transformer, by structure rather than by name."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.pytorch_utils import Conv1D

from nse_engine.errors import UnsupportedArchitectureError

# Parent names that mark a feed-forward sub-block, and the usual names of its output projection.
_MLP_PARENTS = ("mlp", "feed_forward", "ffn", "ff", "mlp_block")
_OUT_PROJ_NAMES = ("down_proj", "c_proj", "fc_out", "dense_4h_to_h", "fc2", "w2", "out_proj", "wo")
# A norm applied to the MLP's output before it joins the residual stream (Gemma 2 and 3, OLMo 2).
_POST_MLP_NORM_NAMES = ("post_feedforward_layernorm",)


@dataclass
class EditPoints:
    """Where NSE reads keys and writes updates in one model.

    The MLP output projection of block l maps a key k (d_ff,) to a change of the residual
    stream (hidden,): out = W k, with W of shape (hidden, d_ff). GPT-2's Conv1D stores W
    transposed, as (d_ff, hidden); `transposed` says so and `weight_view` hides it.
    """

    architecture: str
    blocks: nn.ModuleList
    blocks_path: str  # e.g. "model.layers"
    mlp_out_path: str  # relative to a block, e.g. "mlp.down_proj"
    d_ff: int  # neurons: input dimension of the MLP output projection
    hidden_size: int
    transposed: bool
    final_norm: nn.Module
    final_norm_path: str
    lm_head: nn.Module
    embeddings: nn.Module
    mlp_output_norm_path: str | None = None  # relative to a block: a norm between the MLP and the residual

    @property
    def n_layers(self) -> int:
        return len(self.blocks)

    def mlp_out(self, layer: int) -> nn.Module:
        return self.blocks[layer].get_submodule(self.mlp_out_path)

    def mlp_output_norm(self, layer: int) -> nn.Module | None:
        """The norm block `layer` applies to its MLP output, or None when the output joins the residual as is."""
        return self.blocks[layer].get_submodule(self.mlp_output_norm_path) if self.mlp_output_norm_path else None

    def weight(self, layer: int) -> nn.Parameter:
        """The stored parameter of layer `layer`'s projection (shape as stored)."""
        return self.mlp_out(layer).weight

    def weight_view(self, layer: int) -> torch.Tensor:
        """W of layer `layer` as (hidden, d_ff), a view sharing storage with the parameter."""
        w = self.weight(layer)
        return w.T if self.transposed else w

    def weight_name(self, layer: int) -> str:
        """Full parameter name, as in the model's state dict."""
        return f"{self.blocks_path}.{layer}.{self.mlp_out_path}.weight"

    def describe(self) -> dict[str, object]:
        return {
            "architecture": self.architecture,
            "layers": self.n_layers,
            "blocks": self.blocks_path,
            "mlp_output_projection": f"{self.blocks_path}.<i>.{self.mlp_out_path}",
            "projection_type": "Conv1D (stored transposed)" if self.transposed else "nn.Linear",
            "d_ff": self.d_ff,
            "hidden_size": self.hidden_size,
            "final_norm": self.final_norm_path,
            "mlp_output_norm": self.mlp_output_norm_path or "none",
            "lm_head": type(self.lm_head).__name__,
        }


def find_edit_points(model: PreTrainedModel) -> EditPoints:
    """Locate blocks, MLP output projections, final norm and LM head of `model`."""
    archs = getattr(model.config, "architectures", None) or [type(model).__name__]
    arch = archs[0]
    blocks_path, blocks = _find_blocks(model, arch)
    hidden = _hidden_size(model, arch)
    first = blocks[0]
    if any("expert" in name for name, _ in first.named_modules()):
        raise UnsupportedArchitectureError(
            f"{arch}: its blocks use a mixture-of-experts feed-forward layer; NSE edits one dense "
            "MLP output projection per block."
        )
    mlp_out_path, module = _find_mlp_out(first, hidden, arch)
    transposed = isinstance(module, Conv1D)
    d_ff = module.weight.shape[0] if transposed else module.weight.shape[1]
    for i, block in enumerate(blocks):
        try:
            other = block.get_submodule(mlp_out_path)
        except AttributeError:
            raise UnsupportedArchitectureError(
                f"{arch}: block {i} has no {mlp_out_path}; its blocks are not uniform."
            ) from None
        if other.weight.shape != module.weight.shape:
            raise UnsupportedArchitectureError(
                f"{arch}: block {i}'s {mlp_out_path} has shape {tuple(other.weight.shape)}, "
                f"block 0's {tuple(module.weight.shape)}; NSE needs uniform blocks."
            )
    norm_path, norm = _find_final_norm(model, blocks_path, arch)
    lm_head = model.get_output_embeddings()
    if lm_head is None:
        raise UnsupportedArchitectureError(f"{arch}: no language-model head (output embeddings) found.")
    return EditPoints(
        architecture=arch,
        blocks=blocks,
        blocks_path=blocks_path,
        mlp_out_path=mlp_out_path,
        d_ff=int(d_ff),
        hidden_size=hidden,
        transposed=transposed,
        final_norm=norm,
        final_norm_path=norm_path,
        lm_head=lm_head,
        embeddings=model.get_input_embeddings(),
        mlp_output_norm_path=next((n for n in _POST_MLP_NORM_NAMES if hasattr(first, n)), None),
    )


def _hidden_size(model: PreTrainedModel, arch: str) -> int:
    config = model.config
    for attr in ("hidden_size", "n_embd", "d_model"):
        value = getattr(config, attr, None)
        if isinstance(value, int):
            return value
    embeddings = model.get_input_embeddings()
    if embeddings is not None:
        return int(embeddings.weight.shape[1])
    raise UnsupportedArchitectureError(f"{arch}: cannot tell the hidden size from its config.")


def _find_blocks(model: PreTrainedModel, arch: str) -> tuple[str, nn.ModuleList]:
    """The longest ModuleList of identically typed modules: the transformer blocks."""
    best: tuple[str, nn.ModuleList] | None = None
    for name, module in model.named_modules():
        if not isinstance(module, nn.ModuleList) or len(module) == 0:
            continue
        if len({type(child) for child in module}) != 1:
            continue
        if best is None or len(module) > len(best[1]):
            best = (name, module)
    if best is None:
        raise UnsupportedArchitectureError(
            f"{arch}: no list of transformer blocks found (expected a ModuleList such as "
            "model.layers or transformer.h)."
        )
    expected = getattr(model.config, "num_hidden_layers", None) or getattr(model.config, "n_layer", None)
    if expected and len(best[1]) != expected:
        raise UnsupportedArchitectureError(
            f"{arch}: found {len(best[1])} blocks at {best[0]} but the config says {expected} layers."
        )
    return best


def _projection_dims(module: nn.Module) -> tuple[int, int] | None:
    """(in, out) of a linear map, for nn.Linear and GPT-2's Conv1D; None for anything else."""
    if isinstance(module, nn.Linear):
        return module.in_features, module.out_features
    if isinstance(module, Conv1D):
        return module.weight.shape[0], module.weight.shape[1]
    return None


def _find_mlp_out(block: nn.Module, hidden: int, arch: str) -> tuple[str, nn.Module]:
    """The MLP's output projection: maps d_ff -> hidden inside a feed-forward sub-module."""
    candidates: list[tuple[int, str, nn.Module]] = []
    for name, module in block.named_modules():
        dims = _projection_dims(module)
        if dims is None or dims[1] != hidden:
            continue
        parts = name.split(".")
        in_mlp = any(p in _MLP_PARENTS for p in parts[:-1])
        named_like = parts[-1] in _OUT_PROJ_NAMES
        widens = dims[0] != hidden
        score = 4 * in_mlp + 2 * widens + named_like
        if in_mlp or widens:
            candidates.append((score, name, module))
    if not candidates:
        raise UnsupportedArchitectureError(
            f"{arch}: no MLP output projection found in its blocks (a Linear or Conv1D from the "
            f"feed-forward width to the hidden size {hidden}, e.g. mlp.down_proj or mlp.c_proj)."
        )
    best = max(candidates, key=lambda c: c[0])
    return best[1], best[2]


def _find_final_norm(model: PreTrainedModel, blocks_path: str, arch: str) -> tuple[str, nn.Module]:
    """The last normalisation module outside the blocks: applied before the LM head."""
    found: tuple[str, nn.Module] | None = None
    for name, module in model.named_modules():
        if name.startswith(blocks_path + ".") or name == blocks_path:
            continue
        if "norm" in type(module).__name__.lower() or isinstance(module, nn.LayerNorm):
            found = (name, module)
    if found is None:
        raise UnsupportedArchitectureError(f"{arch}: no final normalisation layer found after its blocks.")
    return found
