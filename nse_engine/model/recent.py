"""The list of recently loaded models, kept in the user's data directory."""

from __future__ import annotations

import json
import time
from pathlib import Path

from nse_engine.atomic import atomic_path
from nse_engine.paths import data_dir

_MAX_RECENT = 12


def _file() -> Path:
    return data_dir() / "recent_models.json"


def recent_models() -> list[dict[str, object]]:
    """Most recent first: dicts with source, name, architecture, last_used (epoch seconds)."""
    try:
        entries = json.loads(_file().read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return []
    return [e for e in entries if isinstance(e, dict) and "source" in e]


def remember_model(source: str, name: str, architecture: str) -> None:
    entries = [e for e in recent_models() if e["source"] != source]
    entries.insert(0, {"source": source, "name": name, "architecture": architecture, "last_used": time.time()})
    with atomic_path(_file()) as tmp:
        tmp.write_text(json.dumps(entries[:_MAX_RECENT], indent=2), encoding="utf-8")
