"""`nse compare`: the same facts edited by several methods, each from the same base model.

A method is named `nse`, `memit` or `alphaedit`, optionally with switches: `memit+nas`,
`alphaedit+encore`, `nse+nas+encore`. Each runs the full `nse bench` protocol; between runs
every MLP output projection of the model is put back exactly as it was, so each method starts
from the same base weights, statistics and facts.

A comparison of 1000 facts takes about an hour per method here, so it is saved after every method
and a rerun into the same folder keeps the methods already measured on the same model, facts,
rounds and settings (each column records the commit and date that produced it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import torch

from nse_engine.bench import BenchConfig, bench_settings, run_benchmark, unedited_scores
from nse_engine.bench_progress import BenchProgress
from nse_engine.method_names import METHODS
from nse_engine.errors import NseError
from nse_engine.facts import EditRequest, facts_fingerprint
from nse_engine.model.architecture import find_edit_points
from nse_engine.model.loading import LoadedModel
from nse_engine.progress import JobControl, silent
from nse_engine.provenance import provenance

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


def experiment(cases: list[EditRequest], batch_size: int, model: str) -> dict[str, object]:
    """What makes two comparisons the same experiment: the facts, the round size and the model."""
    return {"cases": len(cases), "batch_size": batch_size, "model": model, "facts": facts_fingerprint(cases)}


def check_same_experiment(earlier: dict, head: dict[str, object]) -> None:
    if any(earlier.get(k) != v for k, v in head.items()):
        raise NseError("the comparison in that folder is of other facts, rounds or model; use another folder "
                       "(nse compare --fresh replaces it)")


def run_comparison(
    loaded: LoadedModel,
    cases: list[EditRequest],
    config: BenchConfig,
    runs: list[MethodRun],
    overrides: dict[str, object] | None = None,
    control: JobControl | None = None,
    earlier: dict | None = None,
    save: Callable[[dict], None] | None = None,
    progress: BenchProgress | None = None,
) -> dict[str, object]:
    """Every `nse bench` figure per method, on the same facts and base model.

    `earlier` is a comparison saved before (compare.json) of the same model, facts and rounds (else
    NseError): a method it measured with the settings this run would use is kept, not rerun, and
    listed in "kept"; methods it holds that this run does not name stay in the result. `save`
    receives the comparison after every method run; with `progress`, every round is saved too and
    a method stopped part-way resumes after its last round (the unedited scores are kept there).
    """
    control = control or silent()
    head = experiment(cases, config.batch_size, loaded.name)
    earlier_results: dict[str, dict] = {}
    if earlier is not None:
        check_same_experiment(earlier, head)
        earlier_results = earlier.get("results", {})
    labels = [r.label for r in runs]
    results: dict[str, object] = {k: v for k, v in earlier_results.items() if k not in labels}
    kept: list[str] = []
    comparison = {**head, "methods": labels + list(results), "kept": kept, "results": results}
    points = find_edit_points(loaded.model)
    base = {l: points.weight(l).detach().clone() for l in range(points.n_layers)}
    dtype = str(loaded.dtype).removeprefix("torch.")
    pre = None
    for i, run in enumerate(runs):
        control.report("methods", i, len(runs), run.label)
        method_overrides = {**(overrides or {}), **run.overrides}
        settings = bench_settings(loaded, run.method, method_overrides).to_dict()
        before = earlier_results.get(run.label)
        if before is not None and before.get("settings") == settings and before.get("dtype") == dtype:
            made = before.get("provenance", {})
            log.info("%s kept from the earlier comparison (commit %s, %s)", run.label, made.get("commit"), made.get("date"))
            results[run.label] = before
            kept.append(run.label)
            continue
        pre = pre or unedited_scores(loaded, cases, control, progress)
        try:
            report = run_benchmark(loaded, cases, config, method_overrides, control, method=run.method, pre=pre,
                                   progress=progress)
        finally:
            with torch.no_grad():
                for layer, weight in base.items():
                    points.weight(layer).copy_(weight)
        results[run.label] = {**report.to_dict(), "provenance": provenance()}
        log.info("%s done", run.label)
        if save:
            save(comparison)
        if progress:
            progress.finish_run()
    control.report("methods", len(runs), len(runs), "done")
    return comparison
