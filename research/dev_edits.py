"""What the diagnostic scripts share: the dev facts, their command-line options, and editing
the first N of them in rounds with the default model's derived settings.

The dev facts live outside the repository, so they are named explicitly: `--cases PATH`, or
the environment variable NSE_DEV_FACTS.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

from nse_engine.bench import read_cases
from nse_engine.editing.derive import default_hparams
from nse_engine.editing.hparams import NseHyperParams
from nse_engine.editing.settings import apply_settings
from nse_engine.facts import EditRequest
from nse_engine.editing.session import EditingSession
from nse_engine.model.architecture import EditPoints, find_edit_points
from nse_engine.model.loading import LoadedModel, load_model

DEV_FACTS_VARIABLE = "NSE_DEV_FACTS"


def add_cases_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cases", type=Path, default=os.environ.get(DEV_FACTS_VARIABLE) or None,
                        help=f"the dev facts (facts_dev.jsonl); default: ${DEV_FACTS_VARIABLE}")


def add_edit_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="default")
    add_cases_argument(parser)
    parser.add_argument("--facts", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=100)


def add_settings_run_arguments(parser: argparse.ArgumentParser, facts: int) -> None:
    """--model, --cases, --facts, --set NAME=VALUE (over the derived settings) and --json OUT."""
    parser.add_argument("--model", default="default")
    add_cases_argument(parser)
    parser.add_argument("--facts", type=int, default=facts)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--json", type=Path, required=True)


def parse_arguments(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Parse the command line; stop with a clear message when no dev facts were named or found."""
    args = parser.parse_args()
    if args.cases is None:
        parser.error(f"name the dev facts with --cases PATH or the environment variable {DEV_FACTS_VARIABLE}")
    if not args.cases.is_file():
        parser.error(f"dev facts not found: {args.cases}")
    return args


@dataclass
class EditRun:
    """A loaded model, its derived settings and the facts to edit, not yet edited."""

    loaded: LoadedModel
    points: EditPoints
    hparams: NseHyperParams
    cases: list[EditRequest]
    batch_size: int

    @classmethod
    def from_arguments(cls, args: argparse.Namespace) -> EditRun:
        loaded = load_model(args.model)
        points = find_edit_points(loaded.model)
        return cls(loaded, points, default_hparams(loaded, points), read_cases(args.cases, args.facts), args.batch_size)

    def edit_in_rounds(self) -> EditingSession:
        session = EditingSession(self.loaded, self.hparams, self.points)
        for start in range(0, len(self.cases), self.batch_size):
            session.apply_round(self.cases[start : start + self.batch_size])
        return session


@dataclass
class SettingsRun:
    """A loaded model, its derived settings with the command line's --set on top, and the facts."""

    loaded: LoadedModel
    points: EditPoints
    hparams: NseHyperParams
    overrides: dict[str, str]
    facts: list[EditRequest]

    @classmethod
    def from_arguments(cls, args: argparse.Namespace) -> SettingsRun:
        loaded = load_model(args.model)
        points = find_edit_points(loaded.model)
        overrides = dict(item.split("=", 1) for item in args.set)
        hparams = apply_settings(default_hparams(loaded, points), overrides, points.n_layers)
        return cls(loaded, points, hparams, overrides, read_cases(args.cases, args.facts))
