"""What the app shows of models: the loaded one, and the ones loaded before.

Plain records importing nothing heavy, so the app's Model screen can take them without torch.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelSummary:
    """A loaded model: what it is, where it runs, what NSE edits in it, and its memory plan."""

    name: str
    source: str  # the path the user gave, or a built-in model's key
    architecture: str
    model_type: str
    layers: int
    parameters: int
    dtype: str
    device: str
    projection: str  # the edited module of each block, e.g. model.layers.<i>.mlp.down_proj
    d_ff: int
    hidden_size: int
    memory_lines: tuple[str, ...]  # the memory plan, one line each


@dataclass(frozen=True)
class RecentModel:
    """A model loaded before, newest first in the list the app shows."""

    source: str
    name: str
    architecture: str
