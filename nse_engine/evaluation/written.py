"""What the model writes about edited facts: the checks a user makes by reading its output.

Teacher-forced scores say what the model prefers; these say what it writes, greedily, as the
Chat screen and a plain completion would show it:
- `generation_paraphrase`: the continuation of each paraphrase starts with the new object;
- `neighbour_generation`: a neighbour's continuation still starts with its own answer (over
  neighbour prompts not edited themselves);
- `chat_answer`: the question built from the fact's prompt (`prompt_question`, never the fact's
  own questions, so figures stay comparable across data sets), through the chat template, is
  answered with the new object;
- `subject_mentioned`: the reply to "Tell me about {subject}." spells the subject exactly (a
  benchmark compares it with the unedited model's reply: subject_spelling).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Collection, Sequence

from nse_engine.answers import mentions, normalise_answer, says, spells
from nse_engine.chat import CHAT_ANSWER_TOKENS, prompt_question, replies, subject_question
from nse_engine.model.generation import GENERATION_SLACK, OnBatch, greedy_continuations
from nse_engine.facts import EditRequest, NeighborhoodCheck
from nse_engine.model.loading import LoadedModel
from nse_engine.model.tokens import encode_target

SUBJECT_REPLY_TOKENS = 32


@dataclass(frozen=True)
class WrittenScores:
    generation_paraphrase: float | None  # share of paraphrases whose continuation says target_new
    neighbour_generation: float | None  # share of unedited neighbour prompts still saying their answer
    chat_answer: bool
    chat_reply: str
    subject_mentioned: bool
    subject_reply: str


def continuations(
    loaded: LoadedModel, prompts_and_answers: Sequence[tuple[str, str]], batch_size: int = 32,
    on_batch: OnBatch | None = None,
) -> dict[tuple[str, str], str]:
    """The greedy continuation of each distinct (prompt, answer) pair, long enough for the answer."""
    pairs = list(dict.fromkeys(prompts_and_answers))
    limits = [len(encode_target(loaded.tokenizer, answer)) + GENERATION_SLACK for _, answer in pairs]
    texts = greedy_continuations(loaded.model, loaded.tokenizer, [p for p, _ in pairs], limits, batch_size, on_batch)
    return dict(zip(pairs, texts))


def work_units(requests: Sequence[EditRequest], edited: Collection[str]) -> int:
    """How many generations `written_scores` runs (for progress totals)."""
    paraphrases = {(p, r.target_new) for r in requests for p in r.paraphrases}
    neighbours = {(n.prompt, n.target) for r in requests for n in unedited_neighbours(r, edited)}
    return len(paraphrases) + len(neighbours) + 2 * len(requests)


def neighbourhood_checks(r: EditRequest) -> list[NeighborhoodCheck]:
    """Neighbourhood checks that can fail: one whose answer is target_new itself tests nothing."""
    return [n for n in r.neighborhood if normalise_answer(n.target) != normalise_answer(r.target_new)]


def unedited_neighbours(r: EditRequest, edited: Collection[str]) -> list[NeighborhoodCheck]:
    """Neighbourhood checks that can fail and whose prompt was not edited on purpose."""
    return [n for n in neighbourhood_checks(r) if n.prompt not in edited]


def written_scores(
    loaded: LoadedModel,
    requests: Sequence[EditRequest],
    edited: Collection[str] = (),
    batch_size: int = 32,
    on_batch: OnBatch | None = None,
) -> list[WrittenScores]:
    """Per request, what the model writes now (the model is not changed)."""
    edited = frozenset(edited)
    wanted = [(p, r.target_new) for r in requests for p in r.paraphrases]
    wanted += [(n.prompt, n.target) for r in requests for n in unedited_neighbours(r, edited)]
    written = continuations(loaded, wanted, batch_size, on_batch)
    chat_replies = replies(loaded, [prompt_question(r, loaded) for r in requests], CHAT_ANSWER_TOKENS, batch_size)
    subjects = list(dict.fromkeys(r.subject for r in requests))  # a subject edited twice is asked about once
    asked = dict(zip(subjects, replies(loaded, [subject_question(s) for s in subjects], SUBJECT_REPLY_TOKENS, batch_size)))
    subject_replies = [asked[r.subject] for r in requests]
    if on_batch is not None:
        on_batch(2 * len(requests))
    scores = []
    for r, chat_reply, subject_reply in zip(requests, chat_replies, subject_replies):
        paraphrased = [says(written[(p, r.target_new)], r.target_new) for p in r.paraphrases]
        kept = [says(written[(n.prompt, n.target)], n.target) for n in unedited_neighbours(r, edited)]
        scores.append(WrittenScores(
            generation_paraphrase=sum(paraphrased) / len(paraphrased) if paraphrased else None,
            neighbour_generation=sum(kept) / len(kept) if kept else None,
            chat_answer=mentions(chat_reply, r.target_new),
            chat_reply=chat_reply,
            subject_mentioned=spells(subject_reply, r.subject),
            subject_reply=subject_reply,
        ))
    return scores
