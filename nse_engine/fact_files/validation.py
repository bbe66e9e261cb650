"""Checks on one fact, shared by the importer, the queue and the GUI's edit form.

Every check names the field it is about, so a message can point at a cell of a file or a box
of a form. Nothing here changes a value except turning a prompt that contains the subject
verbatim into a template, and removing spaces around values (counted by the importer).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from nse_engine.answers import has_word
from nse_engine.facts import EditRequest, NeighborhoodCheck
from nse_engine.errors import NseError

FIELDS = ("subject", "prompt", "target_new", "target_true", "paraphrases", "questions", "neighborhood", "relation")
REQUIRED_FIELDS = ("subject", "prompt", "target_new")
LIST_SEPARATOR = "|"
NEIGHBOR_ARROW = "=>"

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

MAX_CHARACTERS = {
    "subject": 200, "prompt": 500, "target_new": 200, "target_true": 200, "relation": 100,
    "paraphrases": 500, "questions": 500, "neighborhood": 500,  # each paraphrase, question, neighbourhood check
}
"""The most characters each field may hold: the one definition the Edit form, import and the CLI use.
No real fact comes near them; a longer text is a paste gone wrong and would make every round slow."""
NEEDS_WORD = ("subject", "target_new", "target_true")
"""Fields that name something: a text with no letter or digit ("…", "€", an emoji) names nothing a
model could be checked on (such an object would never be said)."""
LIST_FIELDS = ("paraphrases", "questions", "neighborhood")
"""Fields that hold several texts (one per line in the form, separated by `|` in a CSV cell)."""


@dataclass(frozen=True)
class FactProblem:
    """Why a fact cannot be queued; `code` groups problems for summaries."""

    field: str
    code: str  # e.g. "empty", "no_subject", "ambiguous_subject", "same_targets", "duplicate"
    message: str
    line: int | None = None  # line of the source file, when it came from one

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line is not None else ""
        return f"{where}{self.field}: {self.message}"


class InvalidFactError(NseError):
    """A fact given to the queue did not pass validation."""

    def __init__(self, problems: list[FactProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


FACT_TOKEN_CAP = 512  # no fact needs longer texts; longer ones only make a round run for minutes
PREFIX_ROOM = 32  # tokens kept free in the context for the context prefixes in front of a prompt
DEFAULT_MAX_BYTES = 1024  # without a tokenizer: UTF-8 bytes bound the tokens of byte-level tokenizers


@dataclass(frozen=True)
class TokenLimit:
    """How long each text of a fact may be (a prompt with its answer, a paraphrase, a neighbour):
    `max_tokens` as `count_tokens` counts them; longer facts are refused with `explanation`."""

    count_tokens: Callable[[str], int]
    max_tokens: int
    unit: str = "tokens"
    explanation: str = ""  # why this is the limit (default: "the model takes at most N")

    @classmethod
    def for_model(cls, tokenizer: Any, config: Any) -> TokenLimit:
        """The loaded model's limit: its context less room for context prefixes, at most FACT_TOKEN_CAP."""
        context = next((getattr(config, name) for name in ("max_position_embeddings", "n_positions", "n_ctx")
                        if isinstance(getattr(config, name, None), int)), None)
        limit = FACT_TOKEN_CAP if context is None else max(8, min(FACT_TOKEN_CAP, context - PREFIX_ROOM))
        why = (f"the model takes at most {limit:,} (its context of {context:,} tokens, less room for context prefixes)"
               if context is not None and limit < FACT_TOKEN_CAP else f"the model takes at most {limit:,} for a fact")
        return cls(lambda text: len(tokenizer.encode(text)), limit, "tokens", why)

    @classmethod
    def without_model(cls) -> TokenLimit:
        """A safe bound when no model is loaded: UTF-8 bytes, which no byte-level tokenizer's tokens exceed."""
        return cls(lambda text: len(text.encode("utf-8")), DEFAULT_MAX_BYTES, "bytes",
                   f"without a loaded model the limit is {DEFAULT_MAX_BYTES:,} bytes")

    def problem(self, count: int) -> str:
        why = self.explanation or f"the model takes at most {self.max_tokens:,}"
        return f"is {count:,} bytes long; {why}" if self.unit == "bytes" else f"needs {count:,} {self.unit}; {why}"


def build_fact(
    subject: str,
    prompt: str,
    target_new: str,
    target_true: str | None = None,
    paraphrases: Iterable[str] = (),
    neighborhood: Iterable[tuple[str, str]] = (),
    relation: str | None = None,
    questions: Iterable[str] = (),
    token_limit: TokenLimit | None = None,
) -> tuple[EditRequest | None, list[FactProblem]]:
    """Validate a fact's values and build its request; the request is None when any check fails.

    `prompt` may hold `{}` where the subject goes, or contain the subject verbatim once. Paraphrases
    and `questions` are whole texts with the subject written out; like a paraphrase, a question need
    not name the subject verbatim (a user may ask "Where is its headquarters?"), but must say something.
    """
    problems: list[FactProblem] = []
    subject, prompt, target_new = subject.strip(), prompt.strip(), target_new.strip()
    target_true = (target_true or "").strip() or None
    relation = (relation or "").strip() or None
    paraphrases = tuple(p.strip() for p in paraphrases if p.strip())
    questions = tuple(q.strip() for q in questions if q.strip())
    neighbors = tuple((p.strip(), t.strip()) for p, t in neighborhood)

    for name, value in (("subject", subject), ("prompt", prompt), ("target_new", target_new)):
        if not value:
            problems.append(FactProblem(name, "empty", "is empty"))
    problems += _text_problems(subject, prompt, target_new, target_true, relation, paraphrases, questions, neighbors)
    if any(p.code == "too_long" for p in problems):  # a pasted page is not searched for the subject
        return None, problems
    named_values = (
        ("subject", subject), ("prompt", prompt), ("target_new", target_new),
        ("target_true", target_true or ""), ("relation", relation or ""),
        *(("paraphrases", p) for p in paraphrases),
        *(("questions", q) for q in questions),
        *(("neighborhood", f"{p} {t}") for p, t in neighbors),
    )
    if _CONTROL.search(" ".join(value for _, value in named_values)):  # one scan for the common, clean case
        for name, value in named_values:
            if control := _CONTROL.search(value):
                problems.append(FactProblem(name, "control_character", f"contains the control character {control.group()!r}"))

    template = None
    if subject and prompt:
        template, problem = make_template(subject, prompt)
        if problem:
            problems.append(problem)
    if target_true and target_new and target_true.casefold() == target_new.casefold():
        problems.append(FactProblem("target_new", "same_targets", f"equals target_true ({target_true!r}); nothing would change"))
    for paraphrase in paraphrases:
        if "{" in paraphrase or "}" in paraphrase:
            problems.append(FactProblem("paraphrases", "braces", f"{paraphrase!r} has braces; write the subject itself"))
    for question in questions:
        if "{" in question or "}" in question:
            problems.append(FactProblem("questions", "braces", f"{question!r} has braces; write the subject itself"))
    for i, (p, t) in enumerate(neighbors, start=1):
        if not p or not t:
            problems.append(FactProblem("neighborhood", "empty", f"item {i} needs a prompt and an answer"))
        elif not has_word(t):
            problems.append(FactProblem("neighborhood", "no_word", f"item {i}'s answer {t!r} has no letter or digit; write it in words"))

    if problems:
        return None, problems
    request = EditRequest(
        subject=subject,
        prompt=template,  # type: ignore[arg-type]  # set whenever no problem was found
        target_new=target_new,
        target_true=target_true,
        paraphrases=paraphrases,
        neighborhood=tuple(NeighborhoodCheck(p, t) for p, t in neighbors),
        relation=relation,
        questions=questions,
    )
    if token_limit is not None:
        problems.extend(_length_problems(request, token_limit))
    return (None if problems else request), problems


def _text_problems(subject: str, prompt: str, target_new: str, target_true: str | None, relation: str | None,
                   paraphrases: tuple[str, ...], questions: tuple[str, ...],
                   neighbors: tuple[tuple[str, str], ...]) -> list[FactProblem]:
    """Texts longer than MAX_CHARACTERS, and names and questions with no letter or digit."""
    problems = []
    values = {"subject": subject, "target_new": target_new, "target_true": target_true or ""}
    for name in NEEDS_WORD:
        if values[name] and not has_word(values[name]):
            problems.append(FactProblem(name, "no_word", f"{values[name]!r} has no letter or digit; write it in words"))
    for question in questions:  # a question of punctuation only would ask the model nothing
        if not has_word(question):
            problems.append(FactProblem("questions", "no_word",
                                        f"{question!r} has no letter or digit; write the question in words"))
    items = [("subject", subject), ("prompt", prompt), ("target_new", target_new), ("target_true", target_true or ""),
             ("relation", relation or ""), *(("paraphrases", p) for p in paraphrases),
             *(("questions", q) for q in questions),
             *(("neighborhood", f"{p} {NEIGHBOR_ARROW} {t}") for p, t in neighbors)]
    for name, value in items:
        if len(value) > MAX_CHARACTERS[name]:
            problems.append(FactProblem(name, "too_long", too_long_message(name, len(value))))
    return problems


def too_long_message(field: str, length: int) -> str:
    """What a text over its field's limit is told, without the field's name (the caller adds it)."""
    each = " each" if field in LIST_FIELDS else ""
    return f"has {length:,} characters; at most {MAX_CHARACTERS[field]:,} are allowed{each}: shorten it"


def make_template(subject: str, prompt: str) -> tuple[str | None, FactProblem | None]:
    """The prompt as a template with one `{}`, or the problem that prevents it."""
    placeholders = prompt.count("{}")
    if placeholders > 1:
        return None, FactProblem("prompt", "ambiguous_subject", f"has {placeholders} '{{}}'; exactly one is allowed")
    if placeholders == 1:
        template = prompt
    else:
        occurrences = prompt.count(subject)
        if occurrences == 0:
            return None, FactProblem("prompt", "no_subject", f"contains neither '{{}}' nor the subject {subject!r}")
        if occurrences > 1:
            return None, FactProblem(
                "prompt", "ambiguous_subject",
                f"contains the subject {subject!r} {occurrences} times; write '{{}}' where it belongs",
            )
        template = prompt.replace(subject, "{}")
    rest = template.replace("{}", "", 1)
    if "{" in rest or "}" in rest:
        return None, FactProblem("prompt", "braces", "has braces other than the one '{}' for the subject")
    return template, None


def fact_from_fields(
    fields: Mapping[str, str], token_limit: TokenLimit | None = None
) -> tuple[EditRequest | None, list[FactProblem]]:
    """Build a fact from text cells as a CSV row or a form holds them.

    `paraphrases` and `questions` are separated by `|`; `neighborhood` items read
    `prompt => expected answer` and are separated by `|`.
    """
    problems: list[FactProblem] = []
    neighbors: list[tuple[str, str]] = []
    for i, item in enumerate(_split_list(fields.get("neighborhood", "")), start=1):
        prompt, arrow, target = item.partition(NEIGHBOR_ARROW)
        if not arrow:
            problems.append(FactProblem("neighborhood", "format", f"item {i} ({item!r}) lacks '{NEIGHBOR_ARROW}' between prompt and answer"))
        else:
            neighbors.append((prompt, target))
    request, more = build_fact(
        fields.get("subject", ""),
        fields.get("prompt", ""),
        fields.get("target_new", ""),
        fields.get("target_true"),
        _split_list(fields.get("paraphrases", "")),
        neighbors,
        fields.get("relation"),
        _split_list(fields.get("questions", "")),
        token_limit,
    )
    problems.extend(more)
    return (None if problems else request), problems


def fields_of(request: EditRequest) -> dict[str, str]:
    """The request as text cells, the inverse of `fact_from_fields` (for CSV export)."""
    return {
        "subject": request.subject,
        "prompt": request.prompt,
        "target_new": request.target_new,
        "target_true": request.target_true or "",
        "paraphrases": f" {LIST_SEPARATOR} ".join(request.paraphrases),
        "questions": f" {LIST_SEPARATOR} ".join(request.questions),
        "neighborhood": f" {LIST_SEPARATOR} ".join(f"{n.prompt} {NEIGHBOR_ARROW} {n.target}" for n in request.neighborhood),
        "relation": request.relation or "",
    }


def _split_list(cell: str) -> list[str]:
    return [item for item in cell.split(LIST_SEPARATOR) if item.strip()]


def _length_problems(request: EditRequest, limit: TokenLimit) -> list[FactProblem]:
    """Texts the model would read that are too long for it, each named by the field that makes it long."""
    def longer(target: str, name: str, label: str) -> tuple[str, str]:
        if len(target) > len(request.text):
            return name, "together with the prompt and the subject, "
        return "prompt", f"together with the subject and the {label}, "

    texts = [(*longer(request.target_new, "target_new", "new object"), f"{request.text} {request.target_new}")]
    if request.target_true:
        texts.append((*longer(request.target_true, "target_true", "true object"), f"{request.text} {request.target_true}"))
    texts += [("paraphrases", "", f"{p} {request.target_new}") for p in request.paraphrases]
    texts += [("questions", "", q) for q in request.questions]
    texts += [("neighborhood", "", f"{n.prompt} {n.target}") for n in request.neighborhood]
    problems = []
    for field, what, text in texts:
        count = limit.count_tokens(text)
        if count > limit.max_tokens:
            problems.append(FactProblem(field, "too_long", what + limit.problem(count)))
    return problems
