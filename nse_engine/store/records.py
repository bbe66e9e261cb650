"""What the edit log hands out: plain records, detached from the database."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Callable, Mapping

from nse_engine.fact_files.validation import FactProblem
from nse_engine.facts import EditRequest

WriteState = Callable[[Path], None]
"""Writes the engine's editing state to the given path (the store chooses it and makes it durable)."""


@dataclass(frozen=True)
class Fact:
    """A row of the facts table: the request plus where it came from and what became of it."""

    request: EditRequest  # request.fact_id is this row's id
    status: str  # queued / applied / failed / undone
    position: int  # order in the queue
    source_file: str | None
    source_line: int | None
    created_at: str
    batch_id: int | None  # the last batch that ran this fact
    reason: str | None  # why it failed, when it did

    @property
    def id(self) -> int:
        assert self.request.fact_id is not None
        return self.request.fact_id


@dataclass(frozen=True)
class StateFile:
    """An editing-state file the log names; the newest one is the project's current state."""

    id: int
    path: Path
    sha256: str
    kind: str  # "batch": written by a batch; "undo": written when a batch was undone
    batch_id: int
    created_at: str
    discarded: bool = False  # set aside by a rollback (damaged, or newer than the state rolled back to)


@dataclass(frozen=True)
class BatchMetrics:
    """Summary scores after a batch, for the Retention screen's charts. The log keeps them as the
    JSON object of the batch's `metrics` column (to_dict / from_dict convert at the store's edge);
    a log written before the column has none, every score None."""

    retention: float | None = None  # share of the sampled earlier edits the model still gives (None: none)
    efficacy: float | None = None  # share of this batch's own edits it gives
    generalization: float | None = None  # share of their paraphrases that prefer the new object
    specificity: float | None = None  # share of neighbourhood prompts that keep their own answer
    first_round_retention: float | None = None  # of the first round's edits (None: no earlier edits)
    fluency: float | None = None  # n-gram entropy of greedy continuations (None: not measured)

    def to_dict(self) -> dict[str, float | None]:
        """The JSON object the log stores: the first four scores always, the last two only when measured."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        return {name: value for name, value in data.items() if value is not None or name not in _MEASURED_ONLY}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> BatchMetrics:
        """The scores a log's `metrics` object holds (keys it does not know are left out)."""
        return cls(**{f.name: data.get(f.name) for f in fields(cls)})  # type: ignore[arg-type]


_MEASURED_ONLY = ("first_round_retention", "fluency")  # BatchMetrics keys a log holds only when measured


@dataclass(frozen=True)
class Batch:
    id: int
    method: str
    hparams: dict
    started_at: str
    finished_at: str
    duration_s: float
    outcome: str  # applied (all facts) / partial / failed (none)
    fact_ids: tuple[int, ...]
    applied_count: int
    state_file: str | None  # None when the batch left the model unchanged
    state_sha256: str | None
    undone_at: str | None
    metrics: BatchMetrics = field(default_factory=BatchMetrics)  # summary scores after the batch, for charts
    not_held: int = 0  # applied facts the model did not say when the batch ended (Retry queues them again)

    @property
    def undone(self) -> bool:
        return self.undone_at is not None


@dataclass(frozen=True)
class FactEvaluation:
    """After a batch: does the model still give an earlier fact's new target?"""

    fact_id: int
    retained: bool
    prob_new: float | None = None  # probability of target_new
    prob_true: float | None = None  # probability of target_true


@dataclass(frozen=True)
class Evaluation:
    """A FactEvaluation as the log holds it: measured after `batch_id` (a separate record, as the batch
    id exists only once the batch is recorded)."""

    batch_id: int
    fact_id: int
    retained: bool
    prob_new: float | None
    prob_true: float | None


@dataclass(frozen=True)
class WrittenOutcome:
    """What the model wrote after a fact's prompt, and replied to its chat question, when its batch
    ended (None: not checked)."""

    continuation: str | None
    held: bool | None  # it said the new object (in the completion and, for a chat model, the chat reply)
    extra_passes: int  # passes the round added for this fact
    chat_reply: str | None = None  # the reply to the fact's chat question (None: a base model, or an older log)
    completion_held: bool | None = None  # the continuation said it
    chat_held: bool | None = None  # the chat reply said it


@dataclass(frozen=True)
class WrittenShare:
    """Of one batch's facts whose continuation was checked, how many said their new object."""

    batch_id: int
    checked: int
    said: int

    @property
    def share(self) -> float:
        return self.said / self.checked


@dataclass(frozen=True)
class Retry:
    """An applied fact that did not hold, and the queued copy that the next round edits again.

    A copy, not the fact itself: the batch that applied it keeps its record (as `--reapply` does).
    """

    fact_id: int  # the applied fact that did not hold
    batch_id: int  # the batch that applied it
    queued_id: int  # the queued copy
    new: bool  # False: that copy was queued already (asking again queues nothing twice)


@dataclass(frozen=True)
class ScheduleStep:
    """The λ/β schedule at one point of a session, as the Advanced settings show it."""

    earlier_edits: int  # edits already in Kp when a round starts
    share: float  # the multiplier: share of λ (and of β − 1) the round uses
    mom2_update_weight: float  # λ
    earlier_edits_weight: float  # β


@dataclass(frozen=True)
class Chat:
    id: int
    prompt: str
    answer: str
    batch_id: int | None  # the last batch in effect when it was asked; None: the base model
    created_at: str


@dataclass(frozen=True)
class FileRow:
    """One record of a fact file as an import reads it: its cells and what is wrong with it."""

    line: int  # where the record starts; the CSV header is line 1
    fields: Mapping[str, str]  # in the CSV layout, so a rejected row can be fixed and re-imported
    problems: tuple[FactProblem, ...]


@dataclass(frozen=True)
class FilePreview:
    """Every record of a fact file with the problems importing it now would find."""

    path: str
    format: str
    warnings: tuple[str, ...]
    rows: tuple[FileRow, ...]


@dataclass(frozen=True)
class ImportSummary:
    """What an import queued, and the rows it rejected."""

    imported: int
    rejected: tuple[FileRow, ...]
    warnings: tuple[str, ...]
