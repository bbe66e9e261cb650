"""CounterFact-style scores of edited facts: efficacy, generalisation, specificity, generation.

Efficacy, generalisation and specificity compare mean per-token log-probabilities of two answers
(as in ROME/MEMIT); top-1 accuracy and the generation check look at what the model would
actually write, because that is how users judge an edit.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import asdict, dataclass, field
from typing import Collection, Sequence

from nse_engine.facts import EditRequest, NeighborhoodCheck
from nse_engine.evaluation.fluency import FLUENCY_PROMPTS, fluency_score
from nse_engine.evaluation.scoring import TargetScore, greedy_continuations, score_targets
from nse_engine.model.loading import LoadedModel
from nse_engine.model.tokens import encode_target
from nse_engine.progress import JobControl, silent

# Tokens generated beyond the target's length: room for a leading article or punctuation.
GENERATION_SLACK = 3


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
    fluency: float | None  # weighted bi/tri-gram entropy of greedy text on built-in prompts
    seconds: float
    facts: list[FactScores] = field(default_factory=list)

    def to_dict(self, with_facts: bool = True) -> dict[str, object]:
        data = asdict(self)
        if not with_facts:
            del data["facts"]
        return data


def prefers(first: TargetScore, second: TargetScore) -> bool:
    """The model expects `first` more than `second`: higher mean per-token log-probability."""
    return first.mean_logprob > second.mean_logprob


def says(generated: str, target: str) -> bool:
    """Does `generated` start with `target`, ignoring case, spacing and leading punctuation?"""
    return normalise_answer(generated).startswith(normalise_answer(target))


def normalise_answer(text: str) -> str:
    text = re.sub(r"^[\W_]+", "", text.lower())
    return re.sub(r"\s+", " ", text).strip()


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
) -> EvalSummary:
    """Score `requests` on the model as it is now; the model is not changed.

    `batch_size` bounds the distinct prompts run together (and the rows of each generate call);
    `fluency` adds the n-gram entropy of greedy text on FLUENCY_PROMPTS (20 x 64 tokens).
    `edited_prompts`: prompts the user edited; a neighbourhood prompt among them was changed on
    purpose, so `specificity_unedited` leaves it out (in the dev set a third of the neighbour
    prompts of 1000 facts are other facts' edit prompts).
    """
    control = control or silent()
    started = time.monotonic()
    model, tokenizer = loaded.model, loaded.tokenizer
    pairs = _pairs(requests)
    gen_prompts = [r.text for r in requests] if generation else []
    total = len(set(pairs)) + len(gen_prompts) + (len(FLUENCY_PROMPTS) if fluency else 0)
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        control.report("evaluation", done, total)

    control.report("evaluation", 0, total)
    scores = dict(zip(pairs, score_targets(model, tokenizer, pairs, batch_size, advance)))
    texts: list[str | None] = [None] * len(requests)
    if generation:
        limits = [len(encode_target(tokenizer, r.target_new)) + GENERATION_SLACK for r in requests]
        texts = list(greedy_continuations(model, tokenizer, gen_prompts, limits, batch_size, advance))
    edited = frozenset(edited_prompts)
    facts = [_fact_scores(r, scores, text, edited) for r, text in zip(requests, texts)]
    fluency_value = fluency_score(loaded, batch_size, advance) if fluency else None
    return EvalSummary(
        n_facts=len(facts),
        efficacy=_mean([f.efficacy for f in facts]),
        generalization=_mean([f.generalization for f in facts]),
        specificity=_mean([f.specificity for f in facts]),
        specificity_unedited=_mean([f.specificity_unedited for f in facts]),
        top1=_mean([f.top1 for f in facts]),
        generation=_mean([f.generation for f in facts]),
        fluency=fluency_value,
        seconds=time.monotonic() - started,
        facts=facts,
    )


def generation_hits(loaded: LoadedModel, requests: Sequence[EditRequest], batch_size: int = 32) -> list[bool]:
    """Per request: does the greedy continuation of its prompt say target_new?"""
    limits = [len(encode_target(loaded.tokenizer, r.target_new)) + GENERATION_SLACK for r in requests]
    texts = greedy_continuations(loaded.model, loaded.tokenizer, [r.text for r in requests], limits, batch_size)
    return [says(text, r.target_new) for text, r in zip(texts, requests)]


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


def neighbourhood_checks(r: EditRequest) -> list[NeighborhoodCheck]:
    """Neighbourhood checks that can fail: one whose answer is target_new itself tests nothing."""
    return [n for n in r.neighborhood if normalise_answer(n.target) != normalise_answer(r.target_new)]


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
