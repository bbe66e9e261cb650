"""What the Log and Retention screens show (composed by log_queries.py), and what a batch changed.

The app's views receive these records and nothing else from the log: detached from SQLite, and
importing nothing heavier than the fact records. First-round retention is defined here once;
the Retention chart, the workspace's batch metrics and `nse bench` all use it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from nse_engine.facts import EditRequest
from nse_engine.store.records import Batch, BatchMetrics
from nse_engine.store.schema import FACT_STATUSES

__all__ = ["FACT_STATUSES", "BatchChanges", "HeldCount", "LogRow", "RetentionRow", "first_round_retention", "held_count",
           "written_texts"]

SHOWN_CHARS = 60  # of a continuation or chat reply in a verdict line
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def first_round_retention(measured: Iterable[tuple[int, bool]]) -> float | None:
    """Of the first round's edits, the share the model still gives (None: nothing measured).

    `measured` holds (round or batch that applied the edit, whether the model gives its new
    object now) for the edits measured now; the first round is the earliest of them. The
    retention sample always measures every edit of the first round in effect.
    """
    measured = list(measured)
    if not measured:
        return None
    first = min(round_index for round_index, _ in measured)
    kept = [bool(retained) for round_index, retained in measured if round_index == first]
    return sum(kept) / len(kept)


@dataclass(frozen=True)
class LogRow:
    """One fact of the log with its probabilities: just before its own batch, just after it,
    and after the newest batch that measured it ("now")."""

    request: EditRequest  # request.fact_id is the fact's id
    status: str  # one of FACT_STATUSES
    batch_id: int | None  # the last batch that ran this fact
    reason: str | None  # why it was not applied, when it was not
    source_file: str | None
    source_line: int | None
    prob_new_before: float | None
    prob_true_before: float | None
    prob_new_after: float | None
    prob_true_after: float | None
    prob_new_now: float | None
    prob_true_now: float | None
    retained: bool | None  # the model still gives target_new at the newest measurement
    continuation: str | None = None  # what the model wrote after the prompt when its batch ended
    held: bool | None = None  # it said target_new there and in its chat reply (None: the batch did not check)
    extra_passes: int = 0  # targeted passes its batch added for it
    chat_reply: str | None = None  # its reply to the fact's chat question then (None: a base model)
    completion_held: bool | None = None  # the continuation said target_new (None: as `held`)
    chat_held: bool | None = None  # the chat reply said it (None: a base model)

    @property
    def id(self) -> int:
        assert self.request.fact_id is not None
        return self.request.fact_id

    def matches(self, status: str | None, search: str | None) -> bool:
        """Whether the Log's filter shows this row: of `status` (None: any), with `search` in its
        subject, prompt, objects or relation. The same rows as `fact_rows.fact_filter` selects in
        SQL, whose LIKE ignores case for ASCII letters only."""
        if status is not None and self.status != status:
            return False
        if not search:
            return True
        r = self.request
        needle = search.translate(_ASCII_LOWER)
        return any(needle in text.translate(_ASCII_LOWER)
                   for text in (r.subject, r.prompt, r.target_new, r.target_true, r.relation) if text is not None)

    @property
    def not_held(self) -> bool:
        """Applied, but its batch's check found the model did not say the new object."""
        return self.status == "applied" and self.held is False

    @property
    def said_in_completion(self) -> bool | None:
        """The completion's own verdict (the only one of a base model or an older log)."""
        return self.held if self.completion_held is None else self.completion_held

    @property
    def verdict(self) -> str:
        """"held", "held after k extra passes", "not held" ("not held in chat", "not held in the
        completion" where the two disagree), or "" when its batch did not check."""
        if self.held is None:
            return ""
        if not self.held:
            if self.disagrees:
                return "not held in chat" if self.said_in_completion else "not held in the completion"
            return "not held"
        if self.extra_passes:
            return f"held after {self.extra_passes} extra pass{'es' if self.extra_passes > 1 else ''}"
        return "held"

    @property
    def disagrees(self) -> bool:
        """The completion and the chat reply disagree on whether the new object was said."""
        return self.chat_held is not None and self.said_in_completion is not None and self.said_in_completion != self.chat_held


@dataclass(frozen=True)
class HeldCount:
    """How many of a round's applied facts the model said after it: the CLI's and the app's summary line."""

    checked: int  # applied facts whose continuation the round checked
    held: int
    after_extra_passes: int  # of those held, the ones that needed extra passes
    completion: int = 0  # of those checked, the ones whose completion said the new object
    chat_checked: int = 0  # of those checked, the ones asked in chat (a chat model's)
    chat: int = 0  # of those, the ones whose chat reply said it

    def __str__(self) -> str:
        parts = [f"held {self.held}/{self.checked} ({self.after_extra_passes} after extra passes)"]
        if self.chat_checked:  # a chat model: the two places a user reads it
            parts += [f"completion {self.completion}/{self.checked}", f"chat {self.chat}/{self.chat_checked}"]
        return " · ".join(parts)


def held_count(rows: Iterable[LogRow]) -> HeldCount:
    """Count the applied, checked facts among `rows` that held (and, for a chat model, that said the
    new object in the completion and in the chat reply), and how many needed extra passes."""
    checked = [r for r in rows if r.status == "applied" and r.held is not None]
    held = [r for r in checked if r.held]
    asked = [r for r in checked if r.chat_held is not None]
    return HeldCount(len(checked), len(held), sum(r.extra_passes > 0 for r in held),
                     sum(bool(r.said_in_completion) for r in checked), len(asked), sum(bool(r.chat_held) for r in asked))


def written_texts(row: LogRow) -> str:
    """What the model wrote about a checked fact, in words: "completion: Rwanda, … · chat: Tanzania …"
    (a base model's completion only), each shortened to SHOWN_CHARS; "" when its batch did not check."""
    if row.continuation is None:
        return ""
    parts = [("completion", row.continuation)] + ([("chat", row.chat_reply)] if row.chat_reply is not None else [])
    return " · ".join(f"{name}: {_shortened(text)}" for name, text in parts)


def _shortened(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1].rstrip() + "…"


@dataclass(frozen=True)
class RetentionRow:
    """One batch in effect on the Retention screen: edits in effect, the share of earlier edits
    and of the first batch's edits still retained, and the batch's summary scores."""

    batch_id: int
    edits_applied: int  # edits in effect after this batch, this batch's included
    evaluated: int  # earlier edits (from batches before this one) measured after it
    retained: int
    first_batch_share: float | None  # first_round_retention over the edits measured after this batch
    efficacy: float | None  # this batch's own edits
    generalization: float | None
    specificity: float | None
    fluency: float | None
    says_new: float | None = None  # share of the batch's checked facts that held (completion, and chat reply for chat models)

    @property
    def share(self) -> float | None:
        return self.retained / self.evaluated if self.evaluated else None


@dataclass(frozen=True)
class ProjectSeries:
    """Another project's Retention points and how it edits, to overlay on the open project's."""

    folder: str
    name: str
    method: str | None  # None: no method chosen yet
    switches: dict[str, bool]  # NAS / ENCORE as its newest batch (or its creation) had them
    points: tuple[RetentionRow, ...]


@dataclass
class BatchChanges:
    """What a batch or an undo changed, read once when it is committed: each view (and `nse edit`)
    updates itself from it instead of reading the log again."""

    batch_id: int | None
    applied_fact_ids: list[int]
    failed: dict[int, str]  # fact_id -> why it was not applied
    retention: float | None  # share of earlier edits still retained after this batch
    seconds_by_phase: dict[str, float] = field(default_factory=dict)
    metrics: BatchMetrics = field(default_factory=BatchMetrics)
    undone: bool = False
    refreshed: int = 0  # earlier edits that the round moved away and pulled back
    batch: Batch | None = None  # the batch as the log holds it now (undone_at set by an undo)
    point: RetentionRow | None = None  # the batch's point on the Retention screen (None: undone)
    fact_ids: tuple[int, ...] = ()  # facts whose Log row changed: the batch's own and those measured after it
    rows: tuple[LogRow, ...] = ()  # the Log rows of `fact_ids` as the log holds them now, in fact order

    @property
    def own_rows(self) -> list[LogRow]:
        """The Log rows of the batch's own facts (a run's result, `nse edit`'s verdicts)."""
        own = set(self.batch.fact_ids) if self.batch is not None else set()
        return [row for row in self.rows if row.id in own]
