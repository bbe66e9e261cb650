"""Checkpoints of a long benchmark (`nse bench --checkpoint-every N`): every N cases the run
re-scores FIXED samples, so a checkpoint at 10,000 edits costs what one at 1,000 does, and the
points form curves of how a lifelong run holds up (bench_curves.py reads them back).

The samples, as indices into the cases (recorded in the result):
- first: the first `first` facts applied; their efficacy is the retention of the oldest edits
  (the sample is fixed once that many facts are applied);
- last: the `last` facts applied most recently: how the newest edits land (the same size each time);
- neighbours: `neighbours` facts with neighbourhood prompts, drawn (seeded) from the whole stream
  at the first checkpoint: specificity on the same prompts at every checkpoint;
- chat: `chat` facts drawn (seeded) from those applied by the first checkpoint: chat answer and
  subject still spelled;
and fluency on the fixed fluency prompts. Each point also holds what the block of edits before it
cost: seconds per edit, peak memory, and the size of the saved state and of the rounds record.
"""

from __future__ import annotations

import random
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import psutil
import torch

from nse_engine.bench_progress import BenchProgress, RoundsDone
from nse_engine.evaluation.counterfact import EvalSummary, FactScores, evaluate, subject_spelling
from nse_engine.evaluation.fluency import fluency_score
from nse_engine.evaluation.written import neighbourhood_checks
from nse_engine.facts import EditRequest
from nse_engine.model.loading import LoadedModel
from nse_engine.progress import JobControl

try:
    import resource  # POSIX only: the peak resident set size since the process started
except ImportError:  # Windows
    resource = None

DEFAULT_NEIGHBOURS = 200
DEFAULT_CHAT = 200


@dataclass(frozen=True)
class CheckpointConfig:
    every: int  # cases between checkpoints
    first: int | None = None  # the first facts applied, re-scored for retention (None: `every`)
    last: int | None = None  # the last facts applied, re-scored at each checkpoint (None: `every`)
    neighbours: int = DEFAULT_NEIGHBOURS  # facts whose neighbour prompts measure specificity
    chat: int = DEFAULT_CHAT  # facts asked in chat and about their subject
    seed: int = 0  # draws the neighbour and chat samples

    def to_dict(self) -> dict[str, int]:
        return {"every": self.every, "first": self.first or self.every, "last": self.last or self.every,
                "neighbours": self.neighbours, "chat": self.chat, "seed": self.seed}


def peak_rss_mb() -> float:
    """The highest resident memory of this process since it started."""
    if resource is None:
        return psutil.Process().memory_info().peak_wset / 2**20  # Windows keeps the peak working set
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def choose_samples(cases: Sequence[EditRequest], applied: Sequence[int], config: CheckpointConfig) -> dict[str, list[int]]:
    """The neighbour and chat samples, drawn once (at the first checkpoint) and kept for the run."""
    with_neighbours = [i for i, case in enumerate(cases) if neighbourhood_checks(case)]
    neighbours = random.Random(f"{config.seed}:neighbours").sample(with_neighbours, min(config.neighbours, len(with_neighbours)))
    candidates = sorted(applied)
    chat = random.Random(f"{config.seed}:chat").sample(candidates, min(config.chat, len(candidates)))
    return {"neighbours": sorted(neighbours), "chat": sorted(chat)}


class Checkpoints:
    """Runs the checkpoints a run has reached and keeps their points in its `RoundsDone`.

    `written` receives the result so far after each checkpoint (the CLI writes it as the result
    JSON), so a stopped run leaves its curve behind; a resumed run goes on from the saved points.
    """

    def __init__(self, config: CheckpointConfig, loaded: LoadedModel, cases: list[EditRequest], pre: EvalSummary,
                 head: dict[str, object], progress: BenchProgress | None = None,
                 written: Callable[[dict[str, object]], None] | None = None) -> None:
        self.config, self.loaded, self.cases, self.pre = config, loaded, cases, pre
        self.head, self.progress, self.written = head, progress, written
        self.sizes = config.to_dict()

    def run_due(self, done: RoundsDone, batch_size: int, control: JobControl) -> None:
        """Measure a point if the rounds done crossed a multiple of `every` (or ended the stream) since the last one."""
        cases_done = min(done.rounds_done * batch_size, len(self.cases))
        last = done.checkpoints[-1]["cases_done"] if done.checkpoints else 0
        every = self.config.every
        if cases_done <= last or (cases_done // every <= last // every and cases_done < len(self.cases)):
            return
        applied = [i for _, i in done.applied]
        if not done.checkpoint_samples:
            done.checkpoint_samples = choose_samples(self.cases, applied, self.config)
        control.report("checkpoint", len(done.checkpoints), -(-len(self.cases) // every),
                       f"checkpoint at {cases_done} cases")
        started = time.perf_counter()
        point: dict[str, object] = {"cases_done": cases_done, "edits_applied": len(applied), "round": done.rounds_done,
                                    **self._figures(applied, done.checkpoint_samples, control)}
        point["checkpoint_seconds"] = time.perf_counter() - started
        point.update(self._costs(done, cases_done, last))
        done.checkpoints.append(point)
        if self.progress:
            self.progress.save_checkpoint(done)
        if self.written:
            self.written({"status": "running", **self.head, "checkpoints": self.block(done)})

    def block(self, done: RoundsDone) -> dict[str, object]:
        """The result's "checkpoints": sizes, samples (indices into the cases), the unedited figures, the points."""
        first = [i for _, i in done.applied][: self.sizes["first"]]
        samples = {"first": first, **done.checkpoint_samples}
        return {**self.sizes, "samples": samples, "unedited": self._unedited(samples), "points": list(done.checkpoints)}

    def _figures(self, applied: list[int], samples: dict[str, list[int]], control: JobControl) -> dict[str, object]:
        edited = {c.text for c in self.cases}
        first_ids, last_ids = applied[: self.sizes["first"]], applied[-self.sizes["last"]:]
        first = self._evaluate(first_ids, control, generation=True)
        last = first if last_ids == first_ids else self._evaluate(last_ids, control, generation=True)
        neighbours = self._evaluate(samples["neighbours"], control, generation=False, edited_prompts=edited)
        chat = self._evaluate(samples["chat"], control, generation=False, chat=True, edited_prompts=edited)
        spelled = subject_spelling(self._unedited_scores(samples["chat"]), chat) if chat else {}
        return {
            "first_facts": len(first_ids),
            "retention_first": first.efficacy if first else None,
            "generalization_first": first.generalization if first else None,
            "generation_first": first.generation if first else None,
            "last_cases": [last_ids[0], last_ids[-1]] if last_ids else None,
            "efficacy_last": last.efficacy if last else None,
            "generalization_last": last.generalization if last else None,
            "generation_last": last.generation if last else None,
            "specificity": neighbours.specificity if neighbours else None,
            "specificity_unedited_neighbours": neighbours.specificity_unedited if neighbours else None,
            "chat_answer": chat.chat_answer if chat else None,
            "subject_spelling": spelled.get("subject_spelling"),
            "subject_spelled_before": spelled.get("subject_spelled_before"),
            "fluency": fluency_score(self.loaded),
        }

    def _evaluate(self, ids: list[int], control: JobControl, **options: object) -> EvalSummary | None:
        return evaluate(self.loaded, [self.cases[i] for i in ids], control=control, **options) if ids else None

    def _costs(self, done: RoundsDone, cases_done: int, cases_before: int) -> dict[str, object]:
        """What the block of rounds since the last checkpoint cost."""
        before = done.checkpoints[-1]["edit_seconds_so_far"] if done.checkpoints else 0.0
        costs: dict[str, object] = {
            "edit_seconds_so_far": done.edit_seconds,
            "seconds_per_edit": (done.edit_seconds - before) / (cases_done - cases_before),
            "peak_rss_mb": peak_rss_mb(),
            "peak_cuda_mb": None,
            "state_mb": _megabytes(self.progress.session_path) if self.progress else None,
            "log_mb": _megabytes(self.progress.rounds_path) if self.progress else None,
        }
        if self.loaded.device.type == "cuda":
            costs["peak_cuda_mb"] = sum(torch.cuda.max_memory_allocated(d) for d in range(torch.cuda.device_count())) / 2**20
            for d in range(torch.cuda.device_count()):
                torch.cuda.reset_peak_memory_stats(d)  # the next point's peak is its own block's
        return costs

    def _unedited_scores(self, ids: list[int]) -> EvalSummary:
        return replace(self.pre, facts=[self.pre.facts[i] for i in ids])

    def _unedited(self, samples: dict[str, list[int]]) -> dict[str, float | None]:
        """The unedited model's figures on the samples, from its scores saved before editing (no extra evaluation)."""
        facts = self.pre.facts

        def mean(ids: list[int], value: Callable[[FactScores], object]) -> float | None:
            present = [float(v) for v in (value(facts[i]) for i in ids) if v is not None]
            return sum(present) / len(present) if present else None

        chat = samples.get("chat", [])
        return {
            "retention_first": mean(samples["first"], lambda f: f.efficacy),
            "generalization_first": mean(samples["first"], lambda f: f.generalization),
            "generation_first": mean(samples["first"], lambda f: f.generation),
            "specificity": mean(samples.get("neighbours", []), lambda f: f.specificity),
            "specificity_unedited_neighbours": mean(samples.get("neighbours", []), lambda f: f.specificity_unedited),
            "chat_answer": mean(chat, lambda f: f.written.chat_answer if f.written else None),
            "fluency": self.pre.fluency,
        }


def _megabytes(path: Path) -> float | None:
    return path.stat().st_size / 2**20 if path.exists() else None
