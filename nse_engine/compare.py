"""`nse compare`: the same facts edited by several methods, each from the same base model.

A method is named `nse`, `memit` or `alphaedit`, optionally with switches: `memit+nas`,
`alphaedit+encore`, `nse+nas+encore`. Each runs the full `nse bench` protocol; between runs
every MLP output projection of the model is put back exactly as it was, so each method starts
from the same base weights, statistics and facts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from nse_engine.bench import BenchConfig, before_editing, run_benchmark
from nse_engine.method_names import METHODS
from nse_engine.errors import NseError
from nse_engine.facts import EditRequest
from nse_engine.model.architecture import find_edit_points
from nse_engine.model.loading import LoadedModel
from nse_engine.progress import JobControl, silent

log = logging.getLogger(__name__)

SWITCHES = {"nas": {"norm_anchoring": True}, "encore": {"encore": True}}


@dataclass(frozen=True)
class MethodRun:
    """One column of a comparison: a method and the switches it runs with."""

    label: str  # as the user wrote it, e.g. "alphaedit+nas"
    method: str
    overrides: dict[str, object]


def parse_methods(text: str) -> list[MethodRun]:
    """'nse,memit,alphaedit+nas' -> runs; unknown names are an error naming what is allowed."""
    runs = []
    for label in (part.strip() for part in text.split(",")):
        if not label:
            continue
        method, *switches = label.split("+")
        if method not in METHODS:
            raise NseError(f"unknown method {method!r} in --methods; use {', '.join(METHODS)}")
        unknown = [s for s in switches if s not in SWITCHES]
        if unknown:
            raise NseError(f"unknown switch {'+'.join(unknown)!r} in {label!r}; use {', '.join(SWITCHES)}")
        overrides: dict[str, object] = {}
        for switch in switches:
            overrides |= SWITCHES[switch]
        runs.append(MethodRun(label, method, overrides))
    if not runs:
        raise NseError("--methods names no method")
    if len({r.label for r in runs}) != len(runs):
        raise NseError("--methods names a method twice")
    return runs


def run_comparison(
    loaded: LoadedModel,
    cases: list[EditRequest],
    config: BenchConfig,
    runs: list[MethodRun],
    overrides: dict[str, object] | None = None,
    control: JobControl | None = None,
) -> dict[str, object]:
    """Every `nse bench` figure per method, on the same facts and base model."""
    control = control or silent()
    points = find_edit_points(loaded.model)
    base = {l: points.weight(l).detach().clone() for l in range(points.n_layers)}
    pre = before_editing(loaded, cases, control)
    results: dict[str, object] = {}
    for i, run in enumerate(runs):
        control.report("methods", i, len(runs), run.label)
        try:
            results[run.label] = run_benchmark(
                loaded, cases, config, {**(overrides or {}), **run.overrides}, control, method=run.method, pre=pre
            )
        finally:
            with torch.no_grad():
                for layer, weight in base.items():
                    points.weight(layer).copy_(weight)
        log.info("%s done", run.label)
    control.report("methods", len(runs), len(runs), "done")
    return {"cases": len(cases), "batch_size": config.batch_size, "model": loaded.name,
            "methods": [r.label for r in runs], "results": results}
