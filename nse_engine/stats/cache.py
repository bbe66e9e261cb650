"""On-disk cache of key second moments: one safetensors file per layer, verified before use.

The file name is a hash of the key; the key fields are also stored in the file's metadata and
compared on load, with a checksum of the tensor, so a file from another model, corpus or
tokenisation, or a truncated or damaged file, is recomputed rather than used.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from nse_engine.atomic import atomic_path
from nse_engine.model.fingerprint import tensor_digest
from nse_engine.paths import cache_dir

log = logging.getLogger(__name__)

FORMAT = "nse-key-second-moment/1"
_TENSOR = "second_moment"


@dataclass(frozen=True)
class StatsKey:
    """Everything a layer's E[k kᵀ] depends on."""

    fingerprint: str  # prefix_fingerprint: config, embeddings and blocks 0..layer
    layer: int
    module: str  # the projection whose inputs are the keys, e.g. model.layers.4.mlp.down_proj
    corpus: str  # Corpus.identity
    n_tokens: int
    seq_len: int
    seed: int
    tokenization: str  # corpus.tokenization_tag
    precision: str = "float32"  # the pass's matrix products (precision.py)

    def fields(self) -> dict[str, str]:
        fields = {"format": FORMAT} | {name: str(value) for name, value in asdict(self).items()}
        if self.precision == "float32":  # files written before the field existed keep their names
            del fields["precision"]
        return fields

    @property
    def path(self) -> Path:
        digest = hashlib.sha256(json.dumps(self.fields(), sort_keys=True).encode()).hexdigest()
        return cache_dir() / "stats" / f"layer{self.layer:03d}-{digest[:32]}.safetensors"


def save(key: StatsKey, moment: torch.Tensor, info: dict[str, str]) -> Path:
    """Write `moment` (d_ff, d_ff) float64 with the key and `info` (tokens, seconds, ...) as metadata."""
    path = key.path
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = info | key.fields() | {"sha256": tensor_digest(moment)}
    with atomic_path(path) as tmp:
        save_file({_TENSOR: moment.contiguous()}, tmp, metadata=metadata)
    return path


def load(key: StatsKey, d_ff: int) -> tuple[torch.Tensor, dict[str, str]] | None:
    """The cached moment and its metadata, or None (with a warning when a file was there but unusable)."""
    path = key.path
    if not path.exists():
        return None
    try:
        with safe_open(path, framework="pt") as fh:
            metadata = fh.metadata() or {}
            moment = fh.get_tensor(_TENSOR)
    except (SafetensorError, OSError, KeyError, ValueError) as exc:
        log.warning("statistics cache %s is unreadable (%s); recomputing", path, exc)
        return None
    wrong = [name for name, value in key.fields().items() if metadata.get(name) != value]
    if wrong:
        log.warning("statistics cache %s was made for another %s; recomputing", path, ", ".join(wrong))
        return None
    if moment.shape != (d_ff, d_ff) or moment.dtype != torch.float64:
        log.warning("statistics cache %s holds a %s %s tensor; recomputing", path, moment.dtype, tuple(moment.shape))
        return None
    if tensor_digest(moment) != metadata.get("sha256"):
        log.warning("statistics cache %s fails its checksum; recomputing", path)
        return None
    return moment, metadata
