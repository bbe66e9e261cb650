"""The layouts of JSON fact records: ours, CounterFact's and ZsRE's, each read into the values of
a fact with a problem for every missing key or value of the wrong type, named as the layout names it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from nse_engine.errors import ImportFormatError
from nse_engine.fact_files.validation import LIST_SEPARATOR, NEIGHBOR_ARROW, FactProblem


@dataclass(frozen=True)
class Layout:
    """How one layout's records hold a fact, and what it calls our fields in messages."""

    name: str
    keys: frozenset[str]  # top-level keys it reads
    extract: Callable[[dict], tuple[dict[str, Any], list[FactProblem]]]
    field_names: dict[str, str]  # our field name -> the name in this layout, for messages

    def rename(self, problem: FactProblem) -> FactProblem:
        return FactProblem(self.field_names.get(problem.field, problem.field), problem.code, problem.message, problem.line)


class _Reader:
    """Typed access to a JSON record's values; a wrong type or a missing key becomes a problem."""

    def __init__(self, record: dict) -> None:
        self.record = record
        self.problems: list[FactProblem] = []

    def get(self, path: str, field: str, required: bool = True) -> Any:
        value: Any = self.record
        for key in path.split("."):
            if not isinstance(value, dict) or key not in value or value[key] is None:
                if required:
                    self.problems.append(FactProblem(field, "missing", f"missing ({path})"))
                return None
            value = value[key]
        return value

    def text(self, path: str, field: str, required: bool = True) -> str | None:
        value = self.get(path, field, required)
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        self.problems.append(FactProblem(field, "malformed", f"{path} is a {type(value).__name__}, not text"))
        return None

    def texts(self, path: str, field: str) -> list[str]:
        value = self.get(path, field, required=False)
        if value is None:
            return []
        if isinstance(value, str):
            return [value]
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
        self.problems.append(FactProblem(field, "malformed", f"{path} must be a list of texts"))
        return []


def _nse_record(record: dict) -> tuple[dict[str, Any], list[FactProblem]]:
    r = _Reader(record)
    neighbors: list[tuple[str, str]] = []
    raw_neighbors = r.get("neighborhood", "neighborhood", required=False) or []
    if not isinstance(raw_neighbors, list):
        raw_neighbors = [raw_neighbors]
    for item in raw_neighbors:
        if isinstance(item, dict) and isinstance(item.get("prompt"), str) and isinstance(item.get("target"), str):
            neighbors.append((item["prompt"], item["target"]))
        else:
            r.problems.append(FactProblem("neighborhood", "malformed", "items must be objects with text 'prompt' and 'target'"))
            break
    paraphrase_key = "paraphrase_prompts" if "paraphrase_prompts" in record else "paraphrases"
    values = {
        "subject": r.text("subject", "subject") or "",
        "prompt": r.text("prompt", "prompt") or "",
        "target_new": r.text("target_new", "target_new") or "",
        "target_true": r.text("target_true", "target_true", required=False),
        "paraphrases": r.texts(paraphrase_key, "paraphrases"),
        "questions": r.texts("questions", "questions"),
        "neighborhood": neighbors,
        "relation": r.text("relation", "relation", required=False),
    }
    return values, r.problems


def _counterfact_record(record: dict) -> tuple[dict[str, Any], list[FactProblem]]:
    r = _Reader(record)
    target_true = r.text("requested_rewrite.target_true.str", "target_true", required=False)
    neighbor_prompts = r.texts("neighborhood_prompts", "neighborhood")
    if neighbor_prompts and not target_true:
        r.problems.append(FactProblem("neighborhood", "missing", "neighborhood_prompts need target_true.str as their answer"))
    values = {
        "subject": r.text("requested_rewrite.subject", "subject") or "",
        "prompt": r.text("requested_rewrite.prompt", "prompt") or "",
        "target_new": r.text("requested_rewrite.target_new.str", "target_new") or "",
        "target_true": target_true,
        "paraphrases": r.texts("paraphrase_prompts", "paraphrases"),
        "questions": [],
        "neighborhood": [(p, target_true or "") for p in neighbor_prompts],
        "relation": r.text("requested_rewrite.relation_id", "relation", required=False),
    }
    return values, r.problems


def _zsre_record(record: dict) -> tuple[dict[str, Any], list[FactProblem]]:
    r = _Reader(record)
    answers = r.texts("answers", "target_true")
    loc, loc_answer = r.text("loc", "neighborhood", required=False), r.text("loc_ans", "neighborhood", required=False)
    if bool(loc) != bool(loc_answer):
        r.problems.append(FactProblem("neighborhood", "missing", "'loc' and 'loc_ans' come together"))
    if len(answers) > 1:
        r.problems.append(FactProblem(
            "target_true", "several_answers", f"has {len(answers)} answers; NSE keeps one target_true, so split the record"
        ))
    question = r.text("src", "prompt") or ""
    values = {
        "subject": r.text("subject", "subject") or "",
        "prompt": question,
        "target_new": r.text("alt", "target_new") or "",
        "target_true": answers[0] if answers else None,
        "paraphrases": r.texts("rephrase", "paraphrases"),
        "questions": [question] if question.strip() else [],  # src is what a user would ask in chat
        "neighborhood": [(loc, loc_answer)] if loc and loc_answer else [],
        "relation": None,
    }
    return values, r.problems


_NSE = Layout(
    "NSE facts",
    frozenset({"subject", "prompt", "target_new", "target_true", "paraphrase_prompts", "paraphrases", "questions",
               "neighborhood", "relation"}),
    _nse_record,
    {"paraphrases": "paraphrase_prompts"},
)
_COUNTERFACT = Layout(
    "CounterFact",
    frozenset({"requested_rewrite", "paraphrase_prompts", "neighborhood_prompts"}),
    _counterfact_record,
    {
        "subject": "requested_rewrite.subject",
        "prompt": "requested_rewrite.prompt",
        "target_new": "requested_rewrite.target_new.str",
        "target_true": "requested_rewrite.target_true.str",
        "relation": "requested_rewrite.relation_id",
        "paraphrases": "paraphrase_prompts",
        "neighborhood": "neighborhood_prompts",
    },
)
_ZSRE = Layout(
    "ZsRE",
    frozenset({"subject", "src", "alt", "answers", "rephrase", "loc", "loc_ans"}),
    _zsre_record,
    {"prompt": "src", "target_new": "alt", "target_true": "answers", "paraphrases": "rephrase", "questions": "src",
     "neighborhood": "loc/loc_ans"},
)


def layout_of(record: Any, fail: Callable[[str], ImportFormatError]) -> Layout:
    """The layout of a file, told by its first record."""
    if isinstance(record, dict):
        if "requested_rewrite" in record:
            return _COUNTERFACT
        if "src" in record and "alt" in record:
            return _ZSRE
        if "subject" in record and "prompt" in record:
            return _NSE
        keys = ", ".join(sorted(map(str, record))[:10]) or "none"
        raise fail(
            f"the first record (keys: {keys}) is neither our fact layout (subject, prompt, target_new), "
            "CounterFact (requested_rewrite) nor ZsRE (src, alt)"
        )
    raise fail(f"the first record is a JSON {type(record).__name__}, not an object")


def fields_of_values(values: dict[str, Any]) -> dict[str, str]:
    """A record's values as the cells of our CSV layout, so a rejected record can be fixed and re-imported."""
    return {
        "subject": values["subject"],
        "prompt": values["prompt"],
        "target_new": values["target_new"],
        "target_true": values["target_true"] or "",
        "paraphrases": f" {LIST_SEPARATOR} ".join(values["paraphrases"]),
        "questions": f" {LIST_SEPARATOR} ".join(values["questions"]),
        "neighborhood": f" {LIST_SEPARATOR} ".join(f"{p} {NEIGHBOR_ARROW} {t}" for p, t in values["neighborhood"]),
        "relation": values["relation"] or "",
    }


def any_trimmed(values: dict[str, Any]) -> bool:
    """Whether any text of a record has spaces around it (validation trims them)."""
    texts = [v for v in values.values() if isinstance(v, str)]
    texts += [t for v in values.values() if isinstance(v, list) for item in v for t in (item if isinstance(item, tuple) else (item,))]
    return any(t != t.strip() for t in texts)
