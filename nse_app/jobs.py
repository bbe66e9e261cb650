"""The jobs the engine worker runs: each receives the engine objects and a JobContext, never a
widget, and returns engine records (frozen dataclasses) that views show.

This is the one place in the app that imports the engine's model, editing and store modules,
and it imports them inside the functions: the jobs on the worker thread, and `preload_engine`,
which main.py calls when torch should be imported. The rest of the app imports only the
engine's torch-free records, errors and progress (tests/test_layering.py holds the list), so
importing the app's windows never imports torch.
"""

from __future__ import annotations

import gc
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nse_engine.errors import ProjectError
from nse_engine.facts import EditRequest
from nse_engine.model.summary import ModelSummary, RecentModel
from nse_engine.project_summary import ProjectSummary
from nse_engine.store.log_rows import BatchChanges, LogRow, ProjectSeries, RetentionRow
from nse_engine.store.records import Batch, FilePreview, FileRow, ImportSummary, Retry, ScheduleStep

from nse_app.worker import JobContext, between_chunks

if TYPE_CHECKING:  # for type checkers only: importing them would import torch
    from nse_engine.editing.memory_plan import MemoryPlan
    from nse_engine.export_folder import ExportPlan
    from nse_engine.model.architecture import EditPoints
    from nse_engine.model.loading import LoadedModel
    from nse_engine.workspace import Workspace

log = logging.getLogger(__name__)


@dataclass
class Engine:
    """The engine objects the worker thread owns: the loaded model and the open workspace."""

    loaded: LoadedModel | None = None
    workspace: Workspace | None = None

    def require_model(self) -> LoadedModel:
        if self.loaded is None:
            raise ProjectError("No model is loaded. Load a model on the Model screen first.")
        return self.loaded

    def require_workspace(self) -> Workspace:
        if self.workspace is None:
            raise ProjectError("No project is open. Open or create a project on the Model screen first.")
        return self.workspace

    def close(self) -> None:
        """Let go of the open project (its write lock), on the worker thread that opened it."""
        _close_workspace(self)


def preload_engine() -> None:
    """Import torch and transformers before the window shows, then freeze what they allocated
    out of the garbage collector: a full collection over those objects holds the GIL for about
    0.3–0.5 s, which froze the window while the worker loaded a model."""
    import nse_engine.model.loading  # noqa: F401

    gc.collect()
    gc.freeze()


# ---- model and project -----------------------------------------------------------------------


def load_model(engine: Engine, ctx: JobContext, source: str) -> ModelSummary:
    """Load a model (closing the open project, which belongs to the previous model)."""
    from nse_engine.editing.hparams import default_layers
    from nse_engine.editing.memory_plan import plan_for_loaded
    from nse_engine.model.architecture import find_edit_points
    from nse_engine.model.loading import load_model as engine_load
    from nse_engine.model.recent import remember_model

    loaded = engine_load(source, control=ctx.control)
    points = find_edit_points(loaded.model)
    _close_workspace(engine)
    engine.loaded = loaded
    gc.freeze()  # the model's many long-lived objects: full collections skip them (they held the GIL)
    remember_model(loaded.source, loaded.name, loaded.architecture)
    plan = plan_for_loaded(loaded, points, default_layers(loaded.model, points.n_layers))
    return _model_summary(loaded, points, plan)


def _model_summary(loaded: LoadedModel, points: EditPoints, plan: MemoryPlan) -> ModelSummary:
    """The Model screen's record, read from the engine's typed objects (not from `describe()`'s keys)."""
    from nse_engine.model.devices import dtype_name

    config = loaded.model.config
    return ModelSummary(
        name=loaded.name, source=loaded.source, architecture=loaded.architecture, model_type=config.model_type,
        layers=config.num_hidden_layers, parameters=loaded.n_params, dtype=dtype_name(loaded.dtype),
        device=str(loaded.device), projection=f"{points.blocks_path}.<i>.{points.mlp_out_path}",
        d_ff=points.d_ff, hidden_size=points.hidden_size, memory_lines=tuple(plan.lines()),
    )


def open_project(
    engine: Engine, ctx: JobContext, folder: str, method: str | None = None, settings: dict[str, Any] | None = None
) -> ProjectSummary:
    """Create or reopen the project in `folder` on the loaded model; restores its edited weights.
    A new project's `method` and `settings` (the NAS / ENCORE switches) are recorded by the engine.
    Settings that must be measured on the model are left to `prepare_model`, so this is quick."""
    from nse_engine.workspace import Workspace

    loaded = engine.require_model()
    _close_workspace(engine)
    engine.workspace = Workspace.open(loaded, Path(folder), ctx.control, method=method, settings=settings,
                                      derive=False)
    return _project_summary(engine.workspace)


def prepare_model(engine: Engine, ctx: JobContext) -> ProjectSummary:
    """The model's one-time preparation for editing (settings derived, key statistics computed or
    loaded from the cache); run as a cooperative job, so chat and queue edits go on meanwhile."""
    ws = engine.require_workspace()
    ws.prepare(ctx.control)
    return _project_summary(ws)


def _project_summary(ws: Workspace) -> ProjectSummary:
    path = Path(ws.project.folder)
    settings = ws.hparams if ws.session is not None else None
    return ProjectSummary(str(path), path.name, ws.project.meta.base_model_source, ws.method, settings,
                          ws.chosen_settings, ws.prepared)


@between_chunks
def project_base_model(engine: Engine, ctx: JobContext, folder: str) -> str | None:
    """The model a project edits, so opening a project can load it first."""
    from nse_engine.store.project import LOG_FILE, Project

    if not (Path(folder) / LOG_FILE).exists():
        return None
    with Project.open(Path(folder), read_only=True) as project:
        return project.meta.base_model_source


def _close_workspace(engine: Engine) -> None:
    ws, engine.workspace = engine.workspace, None
    if ws is not None:
        ws.project.close()


@between_chunks
def recent_models(engine: Engine, ctx: JobContext) -> list[RecentModel]:
    from nse_engine.model.recent import recent_models as engine_recent

    return [RecentModel(str(e["source"]), str(e.get("name", e["source"])), str(e.get("architecture", "?")))
            for e in engine_recent()]


# ---- the edit log ----------------------------------------------------------------------------


@between_chunks
def queue_facts(engine: Engine, ctx: JobContext, requests: list[EditRequest]) -> list[int]:
    return list(engine.require_workspace().project.queue.queue_facts(requests))


@between_chunks
def update_fact(engine: Engine, ctx: JobContext, fact_id: int, request: EditRequest) -> None:
    engine.require_workspace().project.queue.update_fact(fact_id, request)


@between_chunks
def remove_facts(engine: Engine, ctx: JobContext, fact_ids: list[int]) -> None:
    project = engine.require_workspace().project
    for fact_id in fact_ids:
        project.queue.remove_fact(fact_id)


@between_chunks
def reorder_queue(engine: Engine, ctx: JobContext, fact_ids: list[int]) -> None:
    engine.require_workspace().project.queue.reorder(fact_ids)


@between_chunks
def queued_facts(engine: Engine, ctx: JobContext) -> list[EditRequest]:
    """The queue in run order (each request's fact_id is its row in the log)."""
    return [] if engine.workspace is None else engine.workspace.project.queue.queued_facts()


@between_chunks
def log_rows(
    engine: Engine, ctx: JobContext, status: str | None = None, search: str | None = None,
    fact_ids: tuple[int, ...] | None = None,
) -> list[LogRow]:
    """Facts for the Log screen (all of them, or only `fact_ids`), filtered by status and text."""
    if engine.workspace is None:
        return []
    return engine.workspace.project.queries.log_rows(status, search or None, fact_ids)


@between_chunks
def batches(engine: Engine, ctx: JobContext) -> list[Batch]:
    return [] if engine.workspace is None else engine.workspace.project.queries.batches()


@between_chunks
def requeue_not_held(engine: Engine, ctx: JobContext, batch_ids: list[int]) -> list[Retry]:
    """Queue copies of the applied facts of these batches that the model did not say."""
    return engine.require_workspace().project.queue.requeue_not_held(batch_ids)


REQUEUABLE = ("undone", "failed")  # the facts "Queue again" puts back in the queue (the store's rule)


@between_chunks
def requeue_facts(engine: Engine, ctx: JobContext, fact_ids: list[int], batch_ids: list[int]) -> list[int]:
    """Put undone or failed facts back at the end of the queue, as they are ("Queue again"): these,
    and those of these batches; all or none. Returns the facts queued."""
    project = engine.require_workspace().project
    batches = set(batch_ids)
    ids = sorted(set(fact_ids) | {f.id for f in project.queries.facts() if f.batch_id in batches and f.status in REQUEUABLE})
    project.queue.requeue(ids)
    return ids


@between_chunks
def regularisation_schedule(engine: Engine, ctx: JobContext, overrides: dict[str, Any]) -> list[ScheduleStep] | None:
    """The λ/β multiplier a round would use at a few numbers of earlier edits, with the Advanced
    panel's settings (empty: the schedule is off; None: no project is open, as when the project
    closed while the job waited). Raises SettingsError for a bad setting."""
    from nse_engine.editing.schedule import regularisation_share, schedule_table
    from nse_engine.editing.settings import apply_settings

    ws = engine.workspace
    if ws is None or ws.session is None:  # no settings before the model's preparation
        return None
    hp = apply_settings(ws.hparams, overrides, engine.require_model().model.config.num_hidden_layers) if overrides else ws.hparams
    ramp = hp.solve.schedule_ramp_edits
    if not ramp:
        return []
    points = tuple(sorted({0, ramp // 4, ramp // 2, ramp, 2 * ramp}))
    return [ScheduleStep(n, regularisation_share(hp, n), lam, beta) for n, lam, beta in schedule_table(hp, points)]


@between_chunks
def applied_facts(engine: Engine, ctx: JobContext) -> list[EditRequest]:
    """Applied facts, for the chat's quick questions."""
    if engine.workspace is None:
        return []
    return [f.request for f in engine.workspace.project.queries.facts(status="applied")]


@between_chunks
def retention_points(engine: Engine, ctx: JobContext) -> list[RetentionRow]:
    """The Retention screen's points, one per batch in effect."""
    return [] if engine.workspace is None else engine.workspace.project.queries.retention_points()


@between_chunks
def project_series(engine: Engine, ctx: JobContext, folder: str) -> ProjectSeries:
    """Another project's Retention points, name and method, read without taking its write lock."""
    from nse_engine.store.overlay import read_series

    return read_series(Path(folder))


@between_chunks
def preview_import(engine: Engine, ctx: JobContext, path: str) -> FilePreview:
    """Every record of a fact file with its problems, as importing it now would find them
    (a dry run against the open project adds duplicate checks)."""
    from nse_engine.fact_files.fact_file import FactFile

    rows = []
    with FactFile(Path(path)) as source:
        for record in source.records:
            ctx.control.report("reading file", source.bytes_read, source.total_bytes)
            rows.append(FileRow(record.line, dict(record.fields), tuple(record.problems)))
        file_format, warnings = source.format, tuple(source.warnings)
    if engine.workspace is not None:
        from nse_engine.store import ImportOptions

        report = engine.workspace.project.queue.import_facts(Path(path), ImportOptions(dry_run=True), ctx.control)
        extra = {row.line: row.problems for row in report.rejected}
        rows = [FileRow(r.line, r.fields, extra[r.line]) if not r.problems and r.line in extra else r for r in rows]
    return FilePreview(path, file_format, warnings, tuple(rows))


@between_chunks
def import_file(engine: Engine, ctx: JobContext, path: str) -> ImportSummary:
    """Queue the valid facts of a file, all in one transaction; report the rejected rows."""
    from nse_engine.store import ImportOptions, TokenLimit

    loaded = engine.require_model()
    options = ImportOptions(token_limit=TokenLimit.for_model(loaded.tokenizer, loaded.model.config))
    report = engine.require_workspace().project.queue.import_facts(Path(path), options, ctx.control)
    return ImportSummary(report.imported, tuple(report.rejected), tuple(report.warnings))


@between_chunks
def export_rejected(engine: Engine, ctx: JobContext, rows: list[FileRow], path: str, source: str | None = None) -> int:
    """Write rejected rows in the import layout, with their problems, so they can be fixed and re-imported
    (never over `source`, the file they came from, nor over the open project's files)."""
    from nse_engine.store.csv_export import export_rejected as engine_export

    projects = [engine.workspace.project.folder] if engine.workspace is not None else []
    return engine_export(rows, Path(path), [Path(source)] if source else [], projects)


# ---- mutating operations ---------------------------------------------------------------------


def run_queue(engine: Engine, ctx: JobContext, fact_ids: list[int], batch_size: int, overrides: dict[str, Any]) -> int:
    """Edit the model with these queued facts as consecutive batches (Workspace.run_queue), sending
    each batch's BatchChanges as it is committed; returns the number of batches. Each batch is
    all-or-nothing: a cancel keeps the batches sent. Between batches, and only there, the short
    jobs waiting (chat replies, queue edits) run: the job is cooperative."""
    from nse_engine.editing.settings import apply_settings

    ws = engine.require_workspace()
    ws.project.require_writable("edit")
    with ctx.control.holding():  # no other work during a preparation the run finishes itself
        ws.prepare(ctx.control)  # done already when the app's preparation ran
    n_layers = ws.loaded.model.config.num_hidden_layers
    hparams = apply_settings(ws.hparams, overrides, n_layers) if overrides else None
    batches = 0
    for changes in ws.run_queue(fact_ids, batch_size, hparams, ctx.control):
        ctx.send(changes)
        batches += 1
    return batches


def undo_last_batch(engine: Engine, ctx: JobContext) -> BatchChanges:
    return engine.require_workspace().undo_last_batch(ctx.control)


@between_chunks
def plan_export(engine: Engine, ctx: JobContext, folder: str) -> ExportPlan:
    """What exporting into `folder` would replace and how many edits it holds, asked before exporting
    (it reads only the log and the file system, so the questions come during the model's preparation)."""
    from nse_engine.model_export import plan_export as engine_plan

    ws = engine.require_workspace()
    return engine_plan(ws.project, Path(folder), ws.loaded.source)


def export_model(engine: Engine, ctx: JobContext, folder: str, replace: bool, allow_unedited: bool) -> int:
    """Write the edited model, edits.json and a model card into `folder`; all or nothing."""
    from nse_engine.model_export import export_model as engine_export

    ws = engine.require_workspace()
    return engine_export(ws.loaded, ws.project, Path(folder), ws.base_fingerprint, ctx.control,
                         replace=replace, allow_unedited=allow_unedited)


# ---- generation ------------------------------------------------------------------------------


@between_chunks
def complete(engine: Engine, ctx: JobContext, prompt: str, max_new_tokens: int = 8) -> str:
    """A short greedy plain completion (no chat template): what the model answers now for an
    edit's prompt, shown in the Edit form."""
    from nse_engine.evaluation import greedy_continuations

    loaded = engine.require_model()
    return greedy_continuations(loaded.model, loaded.tokenizer, [prompt], max_new_tokens)[0]


@between_chunks
def chat_reply(
    engine: Engine, ctx: JobContext, messages: list[dict[str, str]],
    original: list[dict[str, str]] | None = None, max_new_tokens: int = 96,
) -> str:
    """Stream the edited model's reply to `messages` as ("edited", piece) values, then, in compare
    mode, the unedited model's reply to `original` (its own conversation: it never sees the edited
    model's replies) as ("original", piece); returns the edited reply. Stop ends the stream that is running."""
    from nse_engine import chat

    loaded = engine.require_model()
    pieces: list[str] = []
    for piece in chat.stream_reply(loaded, messages, max_new_tokens=max_new_tokens, stop_event=ctx.stop_event):
        pieces.append(piece)
        ctx.send(("edited", piece))
    edited = "".join(pieces)
    if original is not None and engine.workspace is not None and not ctx.stop_event.is_set():
        with engine.workspace.original_weights():
            for piece in chat.stream_reply(loaded, original, max_new_tokens=max_new_tokens, stop_event=ctx.stop_event):
                ctx.send(("original", piece))
    if engine.workspace is not None and messages:
        engine.workspace.project.chats.record(messages[-1]["content"], edited)
    return edited


@between_chunks
def fact_question(engine: Engine, ctx: JobContext, fact: EditRequest) -> str:
    """The question the chat asks to check a fact of the log."""
    from nse_engine import chat

    return chat.fact_question(fact, engine.require_model())
