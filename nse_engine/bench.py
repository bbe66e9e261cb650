"""The sequential-editing benchmark behind `nse bench`: quality, retention, speed, memory."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from nse_engine.editing.derive import default_hparams
from nse_engine.editing.hparams import NseHyperParams
from nse_engine.editing.reference import per_fact_target_state
from nse_engine.bench_checkpoints import CheckpointConfig, Checkpoints, peak_rss_mb
from nse_engine.bench_progress import BenchProgress, RoundsDone
from nse_engine.bench_report import BenchReport
from nse_engine.facts import EditRequest, facts_fingerprint
from nse_engine.editing.session import EditingSession
from nse_engine.editing.target_state import compute_target_states
from nse_engine.errors import NseError
from nse_engine.evaluation.counterfact import EvalSummary, evaluate, generation_hits, subject_spelling
from nse_engine.evaluation.retention import retention_sample
from nse_engine.model.architecture import find_edit_points
from nse_engine.model.fingerprint import prefix_fingerprint
from nse_engine.model.loading import LoadedModel
from nse_engine.progress import JobControl, silent
from nse_engine.provenance import provenance
from nse_engine.fact_files.fact_file import FactFile
from nse_engine.store.log_rows import first_round_retention

log = logging.getLogger(__name__)


@dataclass
class BenchConfig:
    limit: int
    batch_size: int
    per_fact_baseline: int = 0  # also time a plain per-fact z loop on this many cases
    retention_sample: int = 300
    checkpoints: CheckpointConfig | None = None  # evaluate fixed samples every so many cases


def read_cases(path: Path, limit: int) -> list[EditRequest]:
    """The first `limit` valid cases of a fact file (our JSONL, CounterFact JSON, CSV, ZsRE)."""
    cases = []
    with FactFile(path) as source:
        for record in source.records:
            if record.request is not None:
                cases.append(record.request)
            if len(cases) == limit:
                break
    if not cases:
        raise NseError(f"{path} holds no valid cases")
    return cases


def before_editing(loaded: LoadedModel, cases: list[EditRequest], control: JobControl | None = None) -> EvalSummary:
    """The scores of the unedited model, as `run_benchmark` reports them under pre_*."""
    return evaluate(loaded, cases, generation=True, fluency=True, control=control,
                    edited_prompts={c.text for c in cases}, chat=True)


def bench_settings(loaded: LoadedModel, method: str = "nse", overrides: dict[str, object] | None = None,
                   control: JobControl | None = None) -> NseHyperParams:
    """The settings a benchmark of `method` runs with: derived for the model (cached), then the overrides."""
    hp: NseHyperParams = default_hparams(loaded, find_edit_points(loaded.model), control or silent(), method)
    return hp.with_overrides(**overrides) if overrides else hp


def base_experiment(loaded: LoadedModel, cases: list[EditRequest]) -> dict[str, object]:
    """What the unedited scores depend on: the base weights (hashed; call before editing), where
    and in which dtype they run, and the facts in order."""
    points = find_edit_points(loaded.model)
    return {"model": loaded.name, "weights": prefix_fingerprint(loaded.model, points, points.n_layers - 1),
            "device": str(loaded.device), "dtype": str(loaded.dtype), "facts": facts_fingerprint(cases)}


def unedited_scores(loaded: LoadedModel, cases: list[EditRequest], control: JobControl,
                    progress: BenchProgress | None = None, experiment: dict[str, object] | None = None) -> EvalSummary:
    """`before_editing`, read from `progress` when an earlier run saved it for this experiment
    (`base_experiment(loaded, cases)`, computed here unless the caller has it)."""
    if progress is None:
        return before_editing(loaded, cases, control)
    experiment = experiment or base_experiment(loaded, cases)
    saved = progress.unedited(experiment)
    if saved is not None:
        log.info("unedited scores read from %s", progress.folder)
        return saved
    scores = before_editing(loaded, cases, control)
    progress.save_unedited(experiment, scores)
    return scores


def run_benchmark(
    loaded: LoadedModel,
    cases: list[EditRequest],
    config: BenchConfig,
    overrides: dict[str, object] | None = None,
    control: JobControl | None = None,
    method: str = "nse",
    pre: EvalSummary | None = None,
    progress: BenchProgress | None = None,
    on_checkpoint: Callable[[dict[str, object]], None] | None = None,
) -> BenchReport:
    """Edit `cases` round by round on a fresh model and measure what the JSON report holds.

    `pre` is `before_editing(loaded, cases)` when the caller has it already (several methods on
    one model). With `progress`, every round is saved there and a run of the same model, facts,
    rounds, method and settings resumes after the last saved round; the caller deletes the
    progress once it has stored the report. The model is left edited; `compare.py` restores it
    between methods. With `config.checkpoints`, fixed samples are scored every so many cases
    (bench_checkpoints.py) and `on_checkpoint` receives the result so far after each.
    """
    control = control or silent()
    points = find_edit_points(loaded.model)
    hp = bench_settings(loaded, method, overrides, control)
    experiment = base_experiment(loaded, cases) if progress else {}  # hashes the weights: before any saved edit
    pre = pre or unedited_scores(loaded, cases, control, progress, experiment)
    run = {**experiment, "batch_size": config.batch_size, "retention_sample": config.retention_sample,
           "per_fact_baseline": config.per_fact_baseline, "settings": hp.to_dict()} if progress else {}
    if progress and config.checkpoints:  # only then: progress saved without checkpoints still resumes
        run["checkpoints"] = config.checkpoints.to_dict()
    resumed = progress.resume(loaded, run, cases) if progress else None
    if resumed:
        done, session = resumed
        log.info("resuming after round %d of %d from %s", done.rounds_done,
                 -(-len(cases) // config.batch_size), progress.folder)
        session.prepare(control)  # outside the rounds' timing: an unbroken run pays it once, in round 1
    else:
        done, session = RoundsDone(run), EditingSession(loaded, hp, points)
    done.processes.append(provenance())
    checkpoints = Checkpoints(
        config.checkpoints, loaded, cases, pre, {"model": loaded.name, "method": hp.method, "cases": len(cases),
                                                 "batch_size": config.batch_size, "settings": hp.to_dict()},
        progress, on_checkpoint) if config.checkpoints else None
    if checkpoints:  # a checkpoint whose measuring a stop interrupted is measured now
        checkpoints.run_due(done, config.batch_size, control)

    edited_prompts = {c.text for c in cases}
    if config.per_fact_baseline and done.per_fact_baseline is None:
        done.per_fact_baseline = _per_fact_baseline(session, cases, config, control)

    n_rounds = -(-len(cases) // config.batch_size)
    for start in range(done.rounds_done * config.batch_size, len(cases), config.batch_size):
        batch = cases[start : start + config.batch_size]
        control.report("rounds", start // config.batch_size, n_rounds, f"{hp.method} round {start // config.batch_size + 1}")
        t0 = time.perf_counter()
        result = session.apply_round(batch, control)
        done.edit_seconds += time.perf_counter() - t0
        for phase, seconds in result.seconds_by_phase.items():
            done.seconds_by_phase[phase] = done.seconds_by_phase.get(phase, 0.0) + seconds
        done.not_applied += [{"subject": o.request.subject, "reason": o.reason} for o in result.not_applied]
        done.refreshed_per_round.append(len(result.refreshed))
        applied_so_far = [(round_index, cases[i]) for round_index, i in done.applied]
        sample = [r for _, r in retention_sample(applied_so_far, config.retention_sample)]
        current = [o.request for o in result.applied]
        applied_now = len(applied_so_far) + len(current)
        if sample:
            earlier = evaluate(loaded, sample, generation=False, control=control)
            done.retention_curve.append({"edits_applied": applied_now, "efficacy_on_earlier": earlier.efficacy})
        if sample or current:
            says_new = generation_hits(loaded, sample + current)
            done.generation_curve.append({"edits_applied": applied_now,
                                          "generation_on_applied": sum(says_new) / len(says_new)})
        done.applied += [(result.round_index, start + k) for k, o in enumerate(result.outcomes) if o.applied]
        done.rounds_done += 1
        log.info("round %d: %d/%d applied, %.1f s", result.round_index, len(result.applied), len(batch),
                 time.perf_counter() - t0)
        if progress:
            done.peak_rss_mb = max(done.peak_rss_mb, peak_rss_mb())
            progress.save_round(done, session)
        if checkpoints:
            checkpoints.run_due(done, config.batch_size, control)

    post = evaluate(loaded, cases, generation=True, fluency=True, control=control, edited_prompts=edited_prompts,
                    chat=True)
    spelling = subject_spelling(pre, post)
    only_resumed = bool(done.resumed_after)  # the rounds ran in several processes, each with its own provenance
    return BenchReport(
        cases=len(cases),
        batch_size=config.batch_size,
        efficacy=post.efficacy,
        generalization=post.generalization,
        specificity=post.specificity,
        specificity_unedited_neighbours=post.specificity_unedited,
        top1=post.top1,
        generation=post.generation,
        generation_paraphrase=post.generation_paraphrase,
        chat_answer=post.chat_answer,
        neighbour_generation=post.neighbour_generation,
        subject_spelling=spelling["subject_spelling"],
        subject_spelled_before=int(spelling["subject_spelled_before"] or 0),
        fluency_before=pre.fluency,
        fluency_after=post.fluency,
        pre_efficacy=pre.efficacy,
        pre_generalization=pre.generalization,
        pre_specificity=pre.specificity,
        pre_specificity_unedited_neighbours=pre.specificity_unedited,
        pre_generation=pre.generation,
        pre_generation_paraphrase=pre.generation_paraphrase,
        pre_chat_answer=pre.chat_answer,
        pre_neighbour_generation=pre.neighbour_generation,
        # every case of the first round, applied or not: the model either gives it after all rounds or not
        first_round_retention=first_round_retention(
            (i // config.batch_size, f.efficacy) for i, f in enumerate(post.facts)
        ),
        retention_curve=done.retention_curve,
        generation_curve=done.generation_curve,
        method=hp.method,
        not_applied=done.not_applied,
        refreshed_per_round=done.refreshed_per_round,
        seconds_per_edit=done.edit_seconds / len(cases),
        seconds_by_phase={k: v / len(cases) for k, v in done.seconds_by_phase.items()},
        edit_seconds_total=done.edit_seconds,
        peak_rss_mb=max(done.peak_rss_mb, peak_rss_mb()),
        device=str(loaded.device),
        dtype=str(loaded.dtype).removeprefix("torch."),
        torch_threads=torch.get_num_threads(),
        model=loaded.name,
        settings=hp.to_dict(),
        status="complete" if checkpoints else None,
        checkpoints=checkpoints.block(done) if checkpoints else None,
        per_fact_baseline=done.per_fact_baseline or None,
        resumed_after_rounds=done.resumed_after if only_resumed else None,
        processes=done.processes if only_resumed else None,
    )


def _per_fact_baseline(session: EditingSession, cases: list[EditRequest], config: BenchConfig,
                       control: JobControl) -> dict[str, float]:
    """Seconds per target state: plain per-fact full-forward loop vs our batched computation."""
    loaded, hp = session.loaded, session.hparams
    session.prepare(control)
    sample = cases[: config.per_fact_baseline]
    with torch.enable_grad():
        t0 = time.perf_counter()
        for request in sample:
            per_fact_target_state(loaded.model, loaded.tokenizer, session.points, request, hp, session.prefixes)
        plain = (time.perf_counter() - t0) / len(sample)
        t0 = time.perf_counter()
        compute_target_states(loaded.model, loaded.tokenizer, session.points, sample, hp, session.prefixes, control)
        batched = (time.perf_counter() - t0) / len(sample)
    return {"facts": len(sample), "per_fact_seconds": plain, "batched_seconds": batched, "speedup": plain / batched}
