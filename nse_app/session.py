"""The app-side model of what is loaded: which model, which project, whether a job runs.

Views take the Session in their constructor and subscribe to its signals. It owns no engine
objects (those live on the worker thread); it keeps their plain descriptions, starts
operations on the worker, and broadcasts each mutating operation's BatchChanges exactly once.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable, Coroutine

from PySide6.QtCore import QObject, QSettings, Signal

from nse_engine.errors import Cancelled, ProjectError

from nse_app import jobs
from nse_app.diagnostics import show_error
from nse_app.worker import EngineWorker, Job

log = logging.getLogger(__name__)


class Session(QObject):
    """One model, at most one project, and the worker that owns them."""

    model_changed = Signal(object)  # describe() dict of the loaded model, or None
    project_changed = Signal(object)  # project info dict, or None
    changed = Signal(object)  # BatchChanges of a finished edit or undo
    facts_changed = Signal()  # the queue or the log changed (queued, edited, removed, imported)
    progress = Signal(object)  # nse_engine.progress.Progress of the running long job
    busy_changed = Signal(bool)  # a long job (load, batch, undo, export) started or ended
    status_message = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.worker = EngineWorker(jobs.Engine(), self)
        self.model_info: dict[str, Any] | None = None
        self.project_info: dict[str, Any] | None = None
        self._tasks: set[asyncio.Task] = set()
        self._long_jobs: list[Job] = []
        self.worker.progress.connect(self._on_progress)

    # ---- running things ----------------------------------------------------------------------

    def start(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task:
        """Run a UI flow as a task we keep a reference to; failures take the default error path."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)

        def done(t: asyncio.Task) -> None:
            self._tasks.discard(t)
            if t.cancelled():
                return
            error = t.exception()
            if error is None:
                return
            if isinstance(error, Cancelled):
                self.status_message.emit("Cancelled.")
            else:
                show_error(error)

        task.add_done_callback(done)
        return task

    def query(self, fn: Callable[..., Any], **kwargs: Any) -> Job:
        """A quick job on the worker (a read, or a small change to the log); `await` it."""
        return self.worker.run(fn.__name__.replace("_", " "), fn, **kwargs)

    def long_job(self, name: str, fn: Callable[..., Any], **kwargs: Any) -> Job:
        """A long, cancellable job with progress; `busy` is true while any runs."""
        job = self.worker.run(name, fn, long=True, **kwargs)
        self._long_jobs.append(job)
        if len(self._long_jobs) == 1:
            self.busy_changed.emit(True)
        job.future.add_done_callback(lambda _f: self._long_done(job))
        return job

    def _long_done(self, job: Job) -> None:
        self._long_jobs.remove(job)
        if not self._long_jobs:
            self.busy_changed.emit(False)

    @property
    def busy(self) -> bool:
        return bool(self._long_jobs)

    def cancel(self) -> None:
        """Cancel the running long job (Esc); it leaves no trace."""
        if self._long_jobs:
            self.status_message.emit("Cancelling…")
        self.worker.cancel_long()

    def _on_progress(self, job: Job, progress: object) -> None:
        if job.long:
            self.progress.emit(progress)

    # ---- flows -------------------------------------------------------------------------------

    async def load_model(self, source: str) -> dict[str, Any]:
        info = await self.long_job("load model", jobs.load_model, source=source)
        self.model_info = info
        had_project = self.project_info is not None
        self.project_info = None
        self.model_changed.emit(info)
        if had_project:
            self.project_changed.emit(None)
        self.status_message.emit(f"Loaded {info['name']}.")
        return info

    async def open_project(self, folder: str) -> dict[str, Any]:
        """Open (or create) a project; with no model loaded, load the one the project edits."""
        if self.model_info is None:
            base = await self.query(jobs.project_base_model, folder=folder)
            if base is None:
                raise ProjectError("Load a model first: a new project edits the model that is loaded.")
            await self.load_model(base)
        info = await self.long_job("open project", jobs.open_project, folder=folder)
        self.project_info = info
        remember_project(folder)
        self.project_changed.emit(info)
        self.facts_changed.emit()
        self.status_message.emit(f"Opened project {info['name']}.")
        return info

    async def queue_facts(self, requests: list[dict[str, Any]]) -> list[int]:
        ids = await self.query(jobs.queue_facts, requests=requests)
        self.facts_changed.emit()
        return ids

    async def import_file(self, path: str) -> dict[str, Any]:
        result = await self.long_job("import", jobs.import_file, path=path)
        self.facts_changed.emit()
        return result

    async def update_fact(self, fact_id: int, request: dict[str, Any]) -> None:
        await self.query(jobs.update_fact, fact_id=fact_id, request=request)
        self.facts_changed.emit()

    async def remove_facts(self, fact_ids: list[int]) -> None:
        await self.query(jobs.remove_facts, fact_ids=fact_ids)
        self.facts_changed.emit()

    async def reorder_queue(self, fact_ids: list[int]) -> None:
        await self.query(jobs.reorder_queue, fact_ids=fact_ids)
        self.facts_changed.emit()

    async def run_batch(self, fact_ids: list[int], overrides: dict[str, Any]) -> Any:
        changes = await self.long_job("edit batch", jobs.run_batch, fact_ids=fact_ids, overrides=overrides)
        self._broadcast(changes)
        applied, failed = len(changes.applied_fact_ids), len(changes.failed)
        pulled_back = f" {changes.refreshed} earlier edits it had moved were pulled back." if changes.refreshed else ""
        self.status_message.emit(f"Batch done: {applied} applied, {failed} not applied.{pulled_back}")
        return changes

    async def undo_last_batch(self) -> Any:
        changes = await self.long_job("undo", jobs.undo_last_batch)
        self._broadcast(changes)
        self.status_message.emit("Undid the last batch.")
        return changes

    async def export_model(self, folder: str) -> None:
        await self.long_job("export", jobs.export_model, folder=folder)
        self.status_message.emit(f"Exported the edited model to {folder}.")

    def _broadcast(self, changes: Any) -> None:
        self.changed.emit(changes)
        self.facts_changed.emit()

    def shutdown(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        self.worker.shutdown()


def remember_project(folder: str) -> None:
    settings = QSettings()
    recent = [p for p in (settings.value("projects/recent", []) or []) if p != folder]
    settings.setValue("projects/recent", [folder, *recent][:10])


def recent_projects() -> list[str]:
    value = QSettings().value("projects/recent", []) or []
    return [value] if isinstance(value, str) else list(value)
