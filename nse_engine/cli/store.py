"""CLI commands of this area; filled in as the feature lands."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """No commands yet."""
