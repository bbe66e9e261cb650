"""The editing-state file: every committed round of a session in one safetensors file.

Tensors `r{round}.u{update}.neurons|left|right` (each layer update's factors, in order),
`r{round}.keys.{layer}` (the keys the round added to Kp) and `r{round}.targets` (the applied
facts' target states); the metadata holds the format version, the base model's fingerprint,
the settings, the context prefixes and each round's requests and outcomes as JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from nse_engine.atomic import atomic_path
from nse_engine.editing.hparams import NseHyperParams
from nse_engine.editing.ledger import EditRound
from nse_engine.editing.update import LayerUpdate
from nse_engine.errors import DamagedStateError, ProjectError
from nse_engine.facts import EditRequest, FactOutcome

STATE_FORMAT = 1


@dataclass
class SavedSession:
    """What a state file holds, read back."""

    base_fingerprint: str
    architecture: str
    hparams: NseHyperParams
    prefixes: list[str] | None
    rounds: list[EditRound]


def write_state(path: Path, session: SavedSession) -> None:
    """Write the whole session to one safetensors file, atomically."""
    tensors: dict[str, torch.Tensor] = {}
    rounds_meta = []
    for r, record in enumerate(session.rounds):
        for u, update in enumerate(record.updates):
            tensors[f"r{r}.u{u}.neurons"] = update.neurons.contiguous()
            tensors[f"r{r}.u{u}.left"] = update.left.contiguous()
            tensors[f"r{r}.u{u}.right"] = update.right.contiguous()
        for layer, keys in record.keys.items():
            tensors[f"r{r}.keys.{layer}"] = keys.contiguous()
        if record.targets is not None:
            tensors[f"r{r}.targets"] = record.targets.contiguous()
        rounds_meta.append({
            "requests": [q.to_dict() for q in record.requests],
            "outcomes": [
                {"applied": o.applied, "reason": o.reason, "distance_before": o.distance_before,
                 "distance_after": o.distance_after, "continuation": o.continuation, "held": o.held,
                 "extra_passes": o.extra_passes, "chat_reply": o.chat_reply, "completion_held": o.completion_held,
                 "chat_held": o.chat_held} for o in record.outcomes
            ],
            "update_layers": [u.layer for u in record.updates],
            "editing_passes": record.editing_passes,
            "hparams": record.hparams,
            "seconds_by_phase": record.seconds_by_phase,
            "refreshed": record.refreshed,
        })
    metadata = {
        "format": str(STATE_FORMAT),
        "base_fingerprint": session.base_fingerprint,
        "architecture": session.architecture,
        "hparams": json.dumps(session.hparams.to_dict()),
        "prefixes": json.dumps(session.prefixes),
        "rounds": json.dumps(rounds_meta),
    }
    if not tensors:
        tensors["empty"] = torch.zeros(1)
    with atomic_path(Path(path)) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def read_state(path: Path) -> SavedSession:
    """Read a state file; `DamagedStateError` when it cannot be read or holds NaN or infinite
    values (a damaged save), `ProjectError` when it is of another format."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as fh:
            metadata = fh.metadata() or {}
        tensors = load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types for damaged files
        raise DamagedStateError(f"the editing state {path.name} cannot be read: {exc}") from exc
    if metadata.get("format") != str(STATE_FORMAT):
        raise ProjectError(f"{path.name} is not an editing state this version can read.")
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise DamagedStateError(f"the editing state {path.name} holds NaN or infinite values ({name}): it was saved damaged")
    hparams = NseHyperParams.from_dict(json.loads(metadata["hparams"]))
    rounds = []
    for r, meta in enumerate(json.loads(metadata["rounds"])):
        requests = [EditRequest.from_dict(q) for q in meta["requests"]]
        outcomes = [FactOutcome(q, **o) for q, o in zip(requests, meta["outcomes"])]
        updates = [
            LayerUpdate(layer, tensors[f"r{r}.u{u}.neurons"], tensors[f"r{r}.u{u}.left"], tensors[f"r{r}.u{u}.right"])
            for u, layer in enumerate(meta["update_layers"])
        ]
        keys = {l: tensors[f"r{r}.keys.{l}"] for l in hparams.layers}
        rounds.append(EditRound(
            requests, outcomes, updates, keys, meta["editing_passes"], meta["hparams"],
            meta.get("seconds_by_phase", {}), tensors.get(f"r{r}.targets"), meta.get("refreshed", []),
        ))
    return SavedSession(
        metadata["base_fingerprint"], metadata.get("architecture", "?"), hparams, json.loads(metadata["prefixes"]), rounds
    )
