"""What a user asks to edit, and what became of it: the records that editing, evaluation and
the edit log all speak (the bottom layer of the engine; it imports nothing of the engine)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass


@dataclass(frozen=True)
class NeighborhoodCheck:
    """A prompt about another subject whose answer must not change (specificity)."""

    prompt: str
    target: str


@dataclass(frozen=True)
class EditRequest:
    """One fact to write: `prompt.format(subject)` should be completed by `target_new`."""

    subject: str
    prompt: str  # template with "{}" where the subject goes
    target_new: str
    target_true: str | None = None
    paraphrases: tuple[str, ...] = ()  # full prompts (subject filled in) that should also give target_new
    neighborhood: tuple[NeighborhoodCheck, ...] = ()
    relation: str | None = None
    fact_id: int | None = None  # row id in the project's edit log, when it came from one
    questions: tuple[str, ...] = ()  # what a user would ask in chat about it (subject written out); the first is asked

    @property
    def text(self) -> str:
        return self.prompt.format(self.subject)

    def to_dict(self) -> dict[str, object]:
        """The request as JSON values; `questions` only when it has some, so that the fingerprint of a
        fact without questions is what it was before facts could carry them."""
        data: dict[str, object] = {
            "subject": self.subject,
            "prompt": self.prompt,
            "target_new": self.target_new,
            "target_true": self.target_true,
            "paraphrases": list(self.paraphrases),
            "neighborhood": [{"prompt": n.prompt, "target": n.target} for n in self.neighborhood],
            "relation": self.relation,
            "fact_id": self.fact_id,
        }
        if self.questions:
            data["questions"] = list(self.questions)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> EditRequest:
        return cls(
            subject=data["subject"],
            prompt=data["prompt"],
            target_new=data["target_new"],
            target_true=data.get("target_true"),
            paraphrases=tuple(data.get("paraphrases") or ()),
            neighborhood=tuple(NeighborhoodCheck(n["prompt"], n["target"]) for n in data.get("neighborhood") or ()),
            relation=data.get("relation"),
            fact_id=data.get("fact_id"),
            questions=tuple(data.get("questions") or ()),
        )


@dataclass
class FactOutcome:
    """Whether one request of a round was written into the weights, and how close it got."""

    request: EditRequest
    applied: bool
    reason: str | None = None  # why not, when not applied
    distance_before: float = 0.0  # ‖z − h‖ at the last edited layer before the round
    distance_after: float = 0.0
    continuation: str | None = None  # what the model wrote after the prompt once the round was done
    held: bool | None = None  # it says target_new in the completion and chat reply (None: the round did not check)
    extra_passes: int = 0  # targeted passes the round added for this fact before it held (or gave up)
    chat_reply: str | None = None  # the reply to the fact's chat question then (None: a base model, or not checked)
    completion_held: bool | None = None  # the continuation says target_new (without a chat check: `held`)
    chat_held: bool | None = None  # the chat reply states target_new (None: no chat reply)

    def __post_init__(self) -> None:
        if self.completion_held is None and self.chat_held is None:  # no chat check: the completion's is the verdict
            self.completion_held = self.held


def facts_fingerprint(cases: list[EditRequest]) -> str:
    """A hash of the facts in order: two runs with the same fingerprint edited the same facts."""
    text = json.dumps([c.to_dict() for c in cases], sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
