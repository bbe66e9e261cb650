"""Help ▸ About and Help ▸ Documentation: what this is, its version and licence, and the terms of
the model it has loaded (users share edited models, so the model's licence belongs beside ours)."""

from __future__ import annotations

from html import escape
from pathlib import Path

from nse_engine import __version__
from nse_engine.model.builtin_models import BUILTIN_MODELS
from nse_engine.model.summary import ModelSummary

from nse_app.resources import resources_dir

APP_LICENCE = "MIT"


def about_html(model: ModelSummary | None) -> str:
    """The About box: app name, version, licence, and the loaded model's name and licence."""
    lines = [
        f"<b>NSE Studio</b> {escape(__version__)}",
        "Sequential knowledge editing of local language models with NSE (Neuron-level Sequential Editing).",
        f"Licence: {APP_LICENCE}",
    ]
    if model is None:
        lines.append("No model loaded.")
    else:
        builtin = BUILTIN_MODELS.get(model.source)
        licence = builtin.licence if builtin else "see the licence that came with the model's files"
        lines.append(f"Model: {escape(model.name)} — licence: {escape(licence)}")
    return "<br>".join(lines)


def documentation_file() -> Path | None:
    """The README that ships beside the app (a checkout, or a bundle's data folder), if any."""
    readme = resources_dir().parent / "README.md"
    return readme if readme.is_file() else None
