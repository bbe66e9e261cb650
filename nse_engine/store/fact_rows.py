"""How a fact is stored in the `facts` table, and the checks every way of adding one shares."""

from __future__ import annotations

import json
from typing import Mapping

from nse_engine.fact_files.validation import FactProblem, build_fact
from nse_engine.facts import EditRequest, NeighborhoodCheck
from nse_engine.errors import ProjectError
from nse_engine.store import schema
from nse_engine.store.records import Fact

_to_json = json.JSONEncoder(ensure_ascii=False).encode

FACT_COLUMNS = (
    "id, subject, prompt, target_new, target_true, paraphrases, neighborhood, relation, "
    "source_file, source_line, created_at, status, position, batch_id, reason, questions"
)
INSERT_FACT = (
    "INSERT INTO facts (id, subject, prompt, target_new, target_true, paraphrases, neighborhood, relation, "
    "source_file, source_line, created_at, status, position, questions) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?)"
)

QueuedKeys = Mapping[tuple[str, str], tuple[int, str]]
"""(subject, prompt) of each queued fact -> (fact id, target_new)."""


def normalised(request: EditRequest) -> tuple[EditRequest | None, list[FactProblem]]:
    """The request as the log stores it (template prompt, trimmed values), or its problems."""
    return build_fact(
        request.subject, request.prompt, request.target_new, request.target_true, request.paraphrases,
        ((n.prompt, n.target) for n in request.neighborhood), request.relation, request.questions,
    )


def duplicate_problems(key: tuple[str, str], target_new: str, queued: QueuedKeys) -> list[FactProblem]:
    """A queued fact with the same subject and prompt makes a new one a duplicate or a conflict."""
    if key not in queued:
        return []
    fact_id, queued_target = queued[key]
    if queued_target == target_new:
        return [FactProblem("prompt", "duplicate", f"duplicate of queued fact {fact_id}")]
    return [FactProblem(
        "target_new", "duplicate",
        f"queued fact {fact_id} already asks for {queued_target!r} for this subject and prompt; edit or remove it first",
    )]


def fact_row(fact_id: int, position: int, r: EditRequest, source_file: str | None, source_line: int | None,
             created: str) -> tuple:
    """The values of INSERT_FACT for one request."""
    return (
        fact_id, r.subject, r.prompt, r.target_new, r.target_true,
        _to_json(list(r.paraphrases)),
        _to_json([{"prompt": n.prompt, "target": n.target} for n in r.neighborhood]),
        r.relation, source_file, source_line, created, position, _to_json(list(r.questions)),
    )


def fact_record(r: Mapping) -> Fact:
    """A row of FACT_COLUMNS as a record."""
    request = EditRequest(
        subject=r["subject"], prompt=r["prompt"], target_new=r["target_new"], target_true=r["target_true"],
        paraphrases=tuple(json.loads(r["paraphrases"])),
        neighborhood=tuple(NeighborhoodCheck(n["prompt"], n["target"]) for n in json.loads(r["neighborhood"])),
        relation=r["relation"], fact_id=r["id"], questions=tuple(json.loads(r["questions"])),
    )
    return Fact(request, r["status"], r["position"], r["source_file"], r["source_line"], r["created_at"], r["batch_id"], r["reason"])


def fact_filter(status: str | None, search: str | None) -> tuple[str, list[object]]:
    """A WHERE clause and its parameters: one status, and `search` in any text field (`LogRow.matches`
    keeps the same rows of a batch's record)."""
    conditions: list[str] = []
    params: list[object] = []
    if status is not None:
        if status not in schema.FACT_STATUSES:
            raise ProjectError(f"unknown status {status!r}; use one of {', '.join(schema.FACT_STATUSES)}")
        conditions.append("status = ?")
        params.append(status)
    if search:
        pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conditions.append(
            "(" + " OR ".join(f"{c} LIKE ? ESCAPE '\\'" for c in ("subject", "prompt", "target_new", "target_true", "relation")) + ")"
        )
        params += [pattern] * 5
    return (f"WHERE {' AND '.join(conditions)}" if conditions else ""), params
