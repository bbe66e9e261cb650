"""The jobs the engine worker runs: each receives the engine objects and a JobContext, never a
widget, and returns plain data (dicts, lists, BatchChanges) that views can show.

Engine modules are imported inside the jobs, on the worker thread, so the window appears
before torch and transformers have finished importing.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nse_engine.errors import ProjectError

from nse_app.worker import JobContext

log = logging.getLogger(__name__)


@dataclass
class Engine:
    """The engine objects the worker thread owns: the loaded model and the open workspace."""

    loaded: Any = None  # nse_engine.model.loading.LoadedModel
    workspace: Any = None  # nse_engine.workspace.Workspace

    def require_model(self) -> Any:
        if self.loaded is None:
            raise ProjectError("No model is loaded. Load a model on the Model screen first.")
        return self.loaded

    def require_workspace(self) -> Any:
        if self.workspace is None:
            raise ProjectError("No project is open. Open or create a project on the Model screen first.")
        return self.workspace


def plain(value: Any) -> Any:
    """Engine records as plain data (dicts and lists), safe to hand to the main thread."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


# ---- model and project -----------------------------------------------------------------------


def load_model(engine: Engine, ctx: JobContext, source: str) -> dict[str, Any]:
    """Load a model (closing the open project, which belongs to the previous model)."""
    from nse_engine.editing.hparams import default_layers
    from nse_engine.model.architecture import find_edit_points
    from nse_engine.model.loading import load_model as engine_load
    from nse_engine.model.memory_plan import plan_for_loaded
    from nse_engine.model.recent import remember_model

    loaded = engine_load(source, control=ctx.control)
    points = find_edit_points(loaded.model)
    _close_workspace(engine)
    engine.loaded = loaded
    gc.freeze()  # the model's many long-lived objects: full collections skip them (they held the GIL)
    remember_model(loaded.source, loaded.name, loaded.architecture)
    plan = plan_for_loaded(loaded, points, default_layers(loaded.model, points.n_layers))
    return loaded.describe() | {"edit_points": points.describe(), "memory_plan": plan.summary()}


def open_project(engine: Engine, ctx: JobContext, folder: str) -> dict[str, Any]:
    """Create or reopen the project in `folder` on the loaded model; restores its edited weights."""
    from nse_engine.workspace import Workspace

    loaded = engine.require_model()
    _close_workspace(engine)
    engine.workspace = Workspace.open(loaded, Path(folder), ctx.control)
    return project_info(engine, ctx)


def project_info(engine: Engine, ctx: JobContext) -> dict[str, Any]:
    ws = engine.require_workspace()
    folder = Path(ws.project.folder)
    return {"folder": str(folder), "name": folder.name, "hparams": ws.hparams.to_dict(),
            "base_model": ws.project.base_model_source}


def project_base_model(engine: Engine, ctx: JobContext, folder: str) -> str | None:
    """The model a project edits, so opening a project can load it first."""
    from nse_engine.store.project import LOG_FILE, Project

    if not (Path(folder) / LOG_FILE).exists():
        return None
    with Project.open(Path(folder)) as project:
        return project.base_model_source


def _close_workspace(engine: Engine) -> None:
    ws, engine.workspace = engine.workspace, None
    if ws is not None:
        ws.project.close()


def recent_models(engine: Engine, ctx: JobContext) -> list[dict[str, Any]]:
    from nse_engine.model.recent import recent_models as engine_recent

    return engine_recent()


# ---- the edit log ----------------------------------------------------------------------------


def queue_facts(engine: Engine, ctx: JobContext, requests: list[dict[str, Any]]) -> list[int]:
    from nse_engine.facts import EditRequest

    project = engine.require_workspace().project
    return list(project.queue_facts([EditRequest.from_dict(r) for r in requests]))


def update_fact(engine: Engine, ctx: JobContext, fact_id: int, request: dict[str, Any]) -> None:
    from nse_engine.facts import EditRequest

    engine.require_workspace().project.update_fact(fact_id, EditRequest.from_dict(request))


def remove_facts(engine: Engine, ctx: JobContext, fact_ids: list[int]) -> None:
    project = engine.require_workspace().project
    for fact_id in fact_ids:
        project.remove_fact(fact_id)


def reorder_queue(engine: Engine, ctx: JobContext, fact_ids: list[int]) -> None:
    engine.require_workspace().project.reorder(fact_ids)


def queued_facts(engine: Engine, ctx: JobContext) -> list[dict[str, Any]]:
    """The queue in run order, as flat dicts with an "id"."""
    if engine.workspace is None:
        return []
    return [plain(r) | {"id": r.fact_id, "status": "queued"} for r in engine.workspace.project.queued_facts()]


def log_rows(engine: Engine, ctx: JobContext, status: str | None = None, search: str | None = None) -> dict[str, Any]:
    """Facts (with their probabilities just before and after their own batch and now, retained
    now) and batches, for the Log screen."""
    if engine.workspace is None:
        return {"facts": [], "batches": []}
    project = engine.workspace.project
    before = project.probabilities_before()
    history: dict[int, list[Any]] = {}
    for evaluation in project.evaluations():
        history.setdefault(evaluation.fact_id, []).append(evaluation)
    rows = []
    for fact in project.facts(status=status, search=search or None):
        evals = history.get(fact.id, [])
        own = next((e for e in evals if e.batch_id == fact.batch_id), None)
        latest = evals[-1] if evals else None
        p_new_before, p_true_before = before.get(fact.id, (None, None))
        rows.append(plain(fact.request) | {
            "id": fact.id, "status": fact.status, "batch_id": fact.batch_id, "reason": fact.reason,
            "source_file": fact.source_file, "source_line": fact.source_line,
            "prob_new_before": p_new_before,
            "prob_true_before": p_true_before,
            "prob_new_after": own.prob_new if own else None,
            "prob_true_after": own.prob_true if own else None,
            "prob_new_now": latest.prob_new if latest else None,
            "prob_true_now": latest.prob_true if latest else None,
            "retained": latest.retained if latest else None,
        })
    batches = [plain(b) | {"undone": b.undone} for b in project.batches()]
    return {"facts": rows, "batches": batches}


def fact_texts(engine: Engine, ctx: JobContext) -> list[dict[str, Any]]:
    """Applied facts, for the chat's quick questions."""
    if engine.workspace is None:
        return []
    return [plain(f.request) | {"id": f.id} for f in engine.workspace.project.facts(status="applied")]


def retention_series(engine: Engine, ctx: JobContext) -> list[dict[str, Any]]:
    """Per batch in effect: edits applied so far, the share of earlier edits retained, the share
    of the first batch's edits retained (from the first batch on, so that line is always drawn),
    and the batch's summary scores (efficacy, generalisation, specificity, fluency)."""
    if engine.workspace is None:
        return []
    project = engine.workspace.project
    batches = {b.id: b for b in project.batches(include_undone=False)}
    first_ids = set(next(iter(batches.values())).fact_ids) if batches else set()
    first_by_batch: dict[int, list[bool]] = {}
    for evaluation in project.evaluations():
        if evaluation.fact_id in first_ids and evaluation.batch_id in batches:
            first_by_batch.setdefault(evaluation.batch_id, []).append(evaluation.retained)
    points = []
    for point in project.retention_series():
        first = first_by_batch.get(point.batch_id) or []
        metrics = batches[point.batch_id].metrics if point.batch_id in batches else {}
        points.append(plain(point) | {
            "share": point.share,
            "first_batch_share": sum(first) / len(first) if first else None,
            **{k: metrics.get(k) for k in ("efficacy", "generalization", "specificity", "fluency")},
        })
    return points


def preview_import(engine: Engine, ctx: JobContext, path: str) -> dict[str, Any]:
    """Every record of a fact file with its problems, as importing it now would find them
    (a dry run against the open project adds duplicate checks)."""
    from nse_engine.store.importing import FactFile

    rows = []
    with FactFile(Path(path)) as source:
        for record in source.records:
            ctx.control.report("reading file", source.bytes_read, source.total_bytes)
            rows.append({"line": record.line, "fields": record.fields,
                         "problems": [f"{p.field}: {p.message}" for p in record.problems]})
        file_format, warnings = source.format, list(source.warnings)
    if engine.workspace is not None:
        report = engine.workspace.project.import_facts(Path(path), dry_run=True, control=ctx.control)
        extra = {row.line: row.problems for row in report.rejected}
        for row in rows:
            if not row["problems"] and row["line"] in extra:
                row["problems"] = [f"{p.field}: {p.message}" for p in extra[row["line"]]]
    return {"path": path, "format": file_format, "warnings": warnings, "rows": rows}


def import_file(engine: Engine, ctx: JobContext, path: str) -> dict[str, Any]:
    """Queue the valid facts of a file, all in one transaction; report the rejected rows."""
    report = engine.require_workspace().project.import_facts(Path(path), control=ctx.control)
    return {
        "imported": report.imported,
        "rejected": [{"line": r.line, "fields": r.fields, "problems": [f"{p.field}: {p.message}" for p in r.problems]}
                     for r in report.rejected],
        "warnings": list(report.warnings),
    }


# ---- mutating operations ---------------------------------------------------------------------


def run_batch(engine: Engine, ctx: JobContext, fact_ids: list[int], overrides: dict[str, Any]) -> Any:
    """Edit the model with the given queued facts; all-or-nothing (a cancel changes nothing)."""
    ws = engine.require_workspace()
    hparams = ws.hparams.with_overrides(**overrides) if overrides else None
    if hparams is not None:
        hparams.validate(engine.loaded.model.config.num_hidden_layers)
    return ws.run_batch(fact_ids, ctx.control, hparams)


def undo_last_batch(engine: Engine, ctx: JobContext) -> Any:
    return engine.require_workspace().undo_last_batch(ctx.control)


def export_model(engine: Engine, ctx: JobContext, folder: str) -> str:
    engine.require_workspace().export_model(Path(folder), ctx.control)
    return folder


# ---- generation ------------------------------------------------------------------------------


def complete(engine: Engine, ctx: JobContext, prompt: str, max_new_tokens: int = 8) -> str:
    """A short greedy plain completion (no chat template): what the model answers now for an
    edit's prompt, shown in the Edit form."""
    from nse_engine.evaluation import greedy_continuations

    loaded = engine.require_model()
    return greedy_continuations(loaded.model, loaded.tokenizer, [prompt], max_new_tokens)[0]


def chat_reply(
    engine: Engine, ctx: JobContext, messages: list[dict[str, str]], compare: bool, max_new_tokens: int = 96
) -> dict[str, str | None]:
    """Stream the edited model's reply as ("edited", piece) values, then, in compare mode, the
    unedited model's as ("original", piece). Stop ends the stream that is running."""
    from nse_engine import chat

    loaded = engine.require_model()
    answers: dict[str, str | None] = {"edited": None, "original": None}
    pieces: list[str] = []
    for piece in chat.stream_reply(loaded, messages, max_new_tokens=max_new_tokens, stop_event=ctx.stop_event):
        pieces.append(piece)
        ctx.send(("edited", piece))
    answers["edited"] = "".join(pieces)
    if compare and engine.workspace is not None and not ctx.stop_event.is_set():
        pieces = []
        with engine.workspace.original_weights():
            for piece in chat.stream_reply(loaded, messages, max_new_tokens=max_new_tokens, stop_event=ctx.stop_event):
                pieces.append(piece)
                ctx.send(("original", piece))
        answers["original"] = "".join(pieces)
    if engine.workspace is not None and messages:
        engine.workspace.project.record_chat(messages[-1]["content"], answers["edited"])
    return answers


def fact_question(engine: Engine, ctx: JobContext, fact: dict[str, Any]) -> str:
    """The question the chat asks to check a fact of the log."""
    from nse_engine import chat
    from nse_engine.facts import EditRequest

    return chat.fact_question(EditRequest.from_dict(fact), engine.require_model())
