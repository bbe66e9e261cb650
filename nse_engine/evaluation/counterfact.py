"""CounterFact-style scores of edited facts: efficacy, generalisation, specificity, generation.

Efficacy, generalisation and specificity compare mean per-token log-probabilities of two answers
(as in ROME/MEMIT); top-1 accuracy and the generation check look at what the model would
actually write, because that is how users judge an edit.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Collection, Sequence

from nse_engine.answers import says
from nse_engine.facts import EditRequest, NeighborhoodCheck
from nse_engine.evaluation.fluency import FLUENCY_PROMPTS, fluency_score
from nse_engine.evaluation.scoring import TargetScore, score_targets
from nse_engine.evaluation.written import (
    WrittenScores,
    continuations,
    neighbourhood_checks,
    work_units,
    written_scores,
)
from nse_engine.model.loading import LoadedModel
from nse_engine.progress import JobControl, silent



@dataclass
class FactScores:
    """One fact's scores; None where the fact has nothing to test (no paraphrases, no neighbours)."""

    fact_id: int | None
    subject: str
    target_new: str
    target_true: str | None
    efficacy: bool  # the prompt prefers target_new (over target_true, or token-by-token argmax)
    prob_new: float  # exp(mean log-prob) of target_new after the prompt
    prob_true: float | None  # the same for target_true
    top1: float  # share of target_new tokens that are the argmax under teacher forcing
    generalization: float | None  # share of paraphrases that prefer target_new
    specificity: float | None  # share of neighbourhood prompts that still prefer their own answer
    specificity_unedited: float | None  # the same over neighbour prompts not edited themselves
    generation: bool | None  # the greedy continuation starts with target_new
    generated: str | None  # that continuation
    written: WrittenScores | None = None  # what the model writes (evaluate(chat=True))

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class EvalSummary:
    """Means over facts of each score (None when no fact had anything to test), plus the facts."""

    n_facts: int
    efficacy: float | None
    generalization: float | None
    specificity: float | None
    specificity_unedited: float | None  # neighbours whose own prompt was not edited (see evaluate)
    top1: float | None
    generation: float | None
    generation_paraphrase: float | None  # the chat-level means (None unless evaluate(chat=True))
    neighbour_generation: float | None
    chat_answer: float | None
    subject_mentioned: float | None
    fluency: float | None  # weighted bi/tri-gram entropy of greedy text on built-in prompts
    seconds: float
    facts: list[FactScores] = field(default_factory=list)

    def to_dict(self, with_facts: bool = True) -> dict[str, object]:
        data = asdict(self)
        if not with_facts:
            del data["facts"]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> EvalSummary:
        """The summary `to_dict()` wrote (a benchmark's saved progress)."""
        facts = [FactScores(**{**f, "written": WrittenScores(**f["written"]) if f["written"] else None})
                 for f in data["facts"]]
        return cls(**{**data, "facts": facts})


def prefers(first: TargetScore, second: TargetScore) -> bool:
    """The model expects `first` more than `second`: higher mean per-token log-probability."""
    return first.mean_logprob > second.mean_logprob


def _mean(values: Sequence[float | bool | None]) -> float | None:
    present = [float(v) for v in values if v is not None]
    return sum(present) / len(present) if present else None


def evaluate(
    loaded: LoadedModel,
    requests: Sequence[EditRequest],
    generation: bool = True,
    fluency: bool = False,
    batch_size: int = 32,
    control: JobControl | None = None,
    edited_prompts: Collection[str] = (),
    chat: bool = False,
) -> EvalSummary:
    """Score `requests` on the model as it is now; the model is not changed.

    `batch_size` bounds the distinct prompts run together (and the rows of each generate call);
    `fluency` adds the n-gram entropy of greedy text on FLUENCY_PROMPTS (20 x 64 tokens).
    `edited_prompts`: prompts the user edited; a neighbourhood prompt among them was changed on
    purpose, so `specificity_unedited` leaves it out (in the dev set a third of the neighbour
    prompts of 1000 facts are other facts' edit prompts).
    `chat` adds what the model writes (written.py): paraphrase and neighbour continuations, the
    Chat screen's fact question and the subject-spelling question.
    """
    control = control or silent()
    started = time.monotonic()
    model, tokenizer = loaded.model, loaded.tokenizer
    pairs = _pairs(requests)
    total = (len(set(pairs)) + (len(requests) if generation else 0) + (len(FLUENCY_PROMPTS) if fluency else 0)
             + (work_units(requests, edited_prompts) if chat else 0))
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        control.report("evaluation", done, total)

    control.report("evaluation", 0, total)
    scores = dict(zip(pairs, score_targets(model, tokenizer, pairs, batch_size, advance)))
    texts: list[str | None] = [None] * len(requests)
    if generation:
        written = continuations(loaded, [(r.text, r.target_new) for r in requests], batch_size, advance)
        texts = [written[(r.text, r.target_new)] for r in requests]
    edited = frozenset(edited_prompts)
    facts = [_fact_scores(r, scores, text, edited) for r, text in zip(requests, texts)]
    if chat:
        for fact, extra in zip(facts, written_scores(loaded, requests, edited, batch_size, advance)):
            fact.written = extra
    fluency_value = fluency_score(loaded, batch_size, advance) if fluency else None
    return EvalSummary(
        n_facts=len(facts),
        efficacy=_mean([f.efficacy for f in facts]),
        generalization=_mean([f.generalization for f in facts]),
        specificity=_mean([f.specificity for f in facts]),
        specificity_unedited=_mean([f.specificity_unedited for f in facts]),
        top1=_mean([f.top1 for f in facts]),
        generation=_mean([f.generation for f in facts]),
        generation_paraphrase=_mean([f.written.generation_paraphrase for f in facts if f.written]),
        neighbour_generation=_mean([f.written.neighbour_generation for f in facts if f.written]),
        chat_answer=_mean([f.written.chat_answer for f in facts if f.written]),
        subject_mentioned=_mean([f.written.subject_mentioned for f in facts if f.written]),
        fluency=fluency_value,
        seconds=time.monotonic() - started,
        facts=facts,
    )


def generation_hits(loaded: LoadedModel, requests: Sequence[EditRequest], batch_size: int = 32) -> list[bool]:
    """Per request: does the greedy continuation of its prompt say target_new?"""
    written = continuations(loaded, [(r.text, r.target_new) for r in requests], batch_size)
    return [says(written[(r.text, r.target_new)], r.target_new) for r in requests]


def prompt_probabilities(loaded: LoadedModel, requests: Sequence[EditRequest]) -> list[tuple[float, float | None]]:
    """(P(target_new), P(target_true) or None) after each request's own prompt, as the model is
    now: what the Log shows as "before" for facts about to be edited."""
    pairs = [(r.text, t) for r in requests for t in (r.target_new, r.target_true) if t is not None]
    scores = dict(zip(pairs, score_targets(loaded.model, loaded.tokenizer, pairs)))
    return [
        (_probability(scores[(r.text, r.target_new)]),
         _probability(scores[(r.text, r.target_true)]) if r.target_true is not None else None)
        for r in requests
    ]


def _probability(score: TargetScore) -> float:
    """exp(mean log-prob): the per-token probability of a target, as the Log shows it."""
    return math.exp(score.mean_logprob)


def _pairs(requests: Sequence[EditRequest]) -> list[tuple[str, str]]:
    """Every (prompt, answer) pair the scores of `requests` need."""
    pairs: list[tuple[str, str]] = []
    for r in requests:
        for prompt in (r.text, *r.paraphrases):
            pairs.append((prompt, r.target_new))
            if r.target_true is not None:
                pairs.append((prompt, r.target_true))
        for check in neighbourhood_checks(r):
            pairs += [(check.prompt, check.target), (check.prompt, r.target_new)]
    return pairs


def _fact_scores(
    r: EditRequest, scores: dict[tuple[str, str], TargetScore], generated: str | None, edited: frozenset[str]
) -> FactScores:
    def succeeds(prompt: str) -> bool:
        new = scores[(prompt, r.target_new)]
        if r.target_true is None:
            return new.all_top1
        return prefers(new, scores[(prompt, r.target_true)])

    def keeps(check: NeighborhoodCheck) -> bool:
        return prefers(scores[(check.prompt, check.target)], scores[(check.prompt, r.target_new)])

    kept = [(n.prompt, keeps(n)) for n in neighbourhood_checks(r)]
    new = scores[(r.text, r.target_new)]
    true = scores[(r.text, r.target_true)] if r.target_true is not None else None
    return FactScores(
        fact_id=r.fact_id,
        subject=r.subject,
        target_new=r.target_new,
        target_true=r.target_true,
        efficacy=succeeds(r.text),
        prob_new=_probability(new),
        prob_true=_probability(true) if true is not None else None,
        top1=new.top1,
        generalization=_mean([succeeds(p) for p in r.paraphrases]),
        specificity=_mean([held for _, held in kept]),
        specificity_unedited=_mean([held for prompt, held in kept if prompt not in edited]),
        generation=says(generated, r.target_new) if generated is not None else None,
        generated=generated,
    )


def subject_spelling(pre: EvalSummary, post: EvalSummary) -> dict[str, float | int | None]:
    """Of the facts whose subject the unedited model spells right in "Tell me about {subject}.",
    the share the edited model still spells right; with that count beside it (`pre` and `post`
    score the same facts in the same order)."""
    spelled = [after.written.subject_mentioned for before, after in zip(pre.facts, post.facts)
               if before.written and after.written and before.written.subject_mentioned]
    return {"subject_spelling": sum(spelled) / len(spelled) if spelled else None, "subject_spelled_before": len(spelled)}
