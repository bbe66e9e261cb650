"""AlphaEdit's null-space projection of a layer's keys, from the key second moment C.

AlphaEdit (arXiv 2410.02355) projects every update onto the eigen-directions of C = E[k kᵀ]
whose eigenvalue is below `nullspace_threshold`: general text's keys have (almost) no energy
there, so an update confined to them leaves what the model does on general text unchanged.
The eigendecomposition (float64, `eigh`) is cached beside the statistics, keyed by C's checksum,
so any threshold is a cheap matrix product away.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from nse_engine.atomic import atomic_path
from nse_engine.model.fingerprint import tensor_digest
from nse_engine.paths import cache_dir

log = logging.getLogger(__name__)

FORMAT = "nse-key-eigh/1"


@dataclass(frozen=True)
class Eigenbasis:
    """C = vectors · diag(values) · vectorsᵀ, values ascending."""

    values: torch.Tensor  # (d_ff,) float64
    vectors: torch.Tensor  # (d_ff, d_ff) float64, one eigenvector per column

    def free_directions(self, threshold: float) -> torch.Tensor:
        """(d_ff, r): the eigenvectors whose eigenvalue is below `threshold`."""
        return self.vectors[:, self.values < threshold]

    def projection(self, threshold: float) -> torch.Tensor:
        """P = U Uᵀ over the free directions, (d_ff, d_ff) float64."""
        free = self.free_directions(threshold)
        return free @ free.T

    def free_energy_share(self, threshold: float) -> float:
        """Share of E‖k‖² (general text's key energy) that lies in the free directions."""
        return float(self.values[self.values < threshold].clamp_min(0).sum() / self.values.clamp_min(0).sum())

    def threshold_for_energy(self, share: float) -> float:
        """The threshold whose free directions carry at most `share` of the key energy."""
        energy = self.values.clamp_min(0)
        cumulative = torch.cumsum(energy, 0) / energy.sum()  # (d_ff,)
        count = int((cumulative <= share).sum())
        return float(self.values[count]) if count < len(self.values) else float(self.values[-1]) * 2


def eigenbasis(moment: torch.Tensor) -> Eigenbasis:
    """The eigendecomposition of one layer's C, from the cache or computed (and cached) now."""
    moment = moment.to("cpu", torch.float64)
    digest = tensor_digest(moment)
    path = cache_dir() / "stats" / f"eigh-{digest[:32]}.safetensors"
    cached = _load(path, digest, moment.shape[0])
    if cached is not None:
        return cached
    values, vectors = torch.linalg.eigh(moment)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        save_file({"values": values.contiguous(), "vectors": vectors.contiguous()}, str(tmp),
                  metadata={"format": FORMAT, "moment_sha256": digest})
    return Eigenbasis(values, vectors)


def _load(path: Path, digest: str, d_ff: int) -> Eigenbasis | None:
    if not path.exists():
        return None
    try:
        with safe_open(str(path), framework="pt") as fh:
            metadata = fh.metadata() or {}
            values, vectors = fh.get_tensor("values"), fh.get_tensor("vectors")
    except (SafetensorError, OSError, KeyError, ValueError) as exc:
        log.warning("eigendecomposition cache %s is unreadable (%s); recomputing", path, exc)
        return None
    if metadata.get("format") != FORMAT or metadata.get("moment_sha256") != digest or vectors.shape != (d_ff, d_ff):
        log.warning("eigendecomposition cache %s does not match its statistics; recomputing", path)
        return None
    return Eigenbasis(values, vectors)
