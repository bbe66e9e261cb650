"""Files shipped with the app (icon, style sheet, sample facts), found both in a checkout and
in a PyInstaller bundle, where they live under sys._MEIPASS."""

from __future__ import annotations

import sys
from pathlib import Path


def resources_dir() -> Path:
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        return Path(bundle) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


def resource(name: str) -> Path:
    return resources_dir() / name


def style_sheet() -> str:
    path = resource("style.qss")
    return path.read_text(encoding="utf-8") if path.exists() else ""
