"""Argument types shared by the commands: numbers and settings are checked when they are parsed,
so a mistake is one `error:` line before any model loads or any project changes."""

from __future__ import annotations

import argparse
from typing import Any

from nse_engine.errors import SettingsError


def positive_int(text: str) -> int:
    """A whole number of at least 1 (batch sizes, limits, counts)."""
    return _whole_number(text, 1)


def non_negative_int(text: str) -> int:
    return _whole_number(text, 0)


def setting(text: str) -> tuple[str, Any]:
    """NAME=VALUE of an editing setting, typed and checked (see nse_engine.editing.settings)."""
    from nse_engine.editing.settings import parse_setting  # imports torch: only when --set is given

    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"--set needs NAME=VALUE, got {text!r}")
    try:
        return name.strip(), parse_setting(name.strip(), value)
    except SettingsError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def batch_setting(text: str) -> tuple[str, Any]:
    """NAME=VALUE of a setting one batch may change (`nse edit`): a method or layers is refused here,
    before a model is loaded, not by the round after the facts were queued."""
    from nse_engine.editing.settings import check_batch_setting

    name, value = setting(text)
    try:
        check_batch_setting(name)
    except SettingsError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return name, value


def _whole_number(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < least:
        shown = text if value is not None else repr(text)
        raise argparse.ArgumentTypeError(f"must be a whole number of at least {least}, got {shown}")
    return value
