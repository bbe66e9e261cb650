"""Fingerprints that tie caches and saved editing state to the exact weights they came from."""

from __future__ import annotations

import hashlib
import json

import torch
from transformers import PreTrainedModel

from nse_engine.model.architecture import EditPoints


def tensor_digest(tensor: torch.Tensor) -> str:
    """sha256 of a tensor's values (dtype and shape included), independent of device."""
    t = tensor.detach().to("cpu").contiguous()
    digest = hashlib.sha256(f"{t.dtype}{tuple(t.shape)}".encode())
    digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def config_digest(model: PreTrainedModel) -> str:
    config = model.config.to_dict()
    for volatile in ("_name_or_path", "transformers_version", "dtype", "torch_dtype", "architectures"):
        config.pop(volatile, None)
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


def prefix_fingerprint(
    model: PreTrainedModel,
    points: EditPoints,
    layer: int,
    overrides: dict[str, torch.Tensor] | None = None,
) -> str:
    """Hash of everything the keys of `layer` depend on: config, embeddings, blocks 0..layer.

    `overrides` maps parameter names to the tensors to hash instead (the original weights of
    layers an editing session has changed), so an edited model fingerprints as its base.
    """
    overrides = overrides or {}
    digest = hashlib.sha256(config_digest(model).encode())
    digest.update(tensor_digest(points.embeddings.weight).encode())
    for i in range(layer + 1):
        prefix = f"{points.blocks_path}.{i}."
        for name, param in points.blocks[i].named_parameters():
            full = prefix + name
            digest.update(full.encode())
            digest.update(tensor_digest(overrides.get(full, param)).encode())
    return digest.hexdigest()
