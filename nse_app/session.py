"""The app-side model of what is loaded: which model, which project, whether a job runs.

Views take the Session in their constructor and subscribe to its signals. It owns no engine
objects (those live on the worker thread); it keeps their summaries (engine records), starts
every job on the worker through `job`, and broadcasts each batch's or undo's BatchChanges
exactly once, from which each view updates itself.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Coroutine

from PySide6.QtCore import QObject, Signal

from nse_engine.errors import Cancelled, ProjectError
from nse_engine.facts import EditRequest
from nse_engine.model.summary import ModelSummary
from nse_engine.progress import Progress
from nse_engine.project_summary import ProjectSummary
from nse_engine.store.log_rows import BatchChanges
from nse_engine.store.records import ImportSummary, Retry

from nse_app import jobs
from nse_app.diagnostics import show_error
from nse_app.recent_projects import remember_project
from nse_app.worker import EngineWorker, Job

log = logging.getLogger(__name__)


@dataclass
class QueueRun:
    """A run of consecutive batches from the Queue: which batch runs now, and the time left in all."""

    batches: int
    done: int = 0  # batches finished
    started: float = field(default_factory=time.monotonic)  # reset by `begin`
    running: bool = False  # the first batch has begun (it may wait for the model's preparation first)

    def begin(self) -> None:
        """The first batch's job begins: the run's pace counts from here, not from a wait before it."""
        if not self.running:
            self.running, self.started = True, time.monotonic()

    def eta_s(self) -> float | None:
        """Seconds left for the whole run at the pace of the batches finished so far (None before the first)."""
        if not self.done or self.done >= self.batches:
            return None
        elapsed = time.monotonic() - self.started
        return max(0.0, elapsed / self.done * self.batches - elapsed)


class Session(QObject):
    """One model, at most one project, and the worker that owns them."""

    model_changed = Signal(object)  # ModelSummary of the loaded model, or None
    project_changed = Signal(object)  # ProjectSummary of the open project, or None
    changed = Signal(object)  # BatchChanges of a finished batch or undo
    facts_changed = Signal()  # the queue changed (queued, edited, removed, reordered, imported)
    progress = Signal(object)  # nse_engine.progress.Progress of the running long job
    busy_changed = Signal(bool)  # a long job (load, batch, undo, export) started or ended
    status_message = Signal(str)
    preparation_changed = Signal()  # the model's preparation started, progressed, ended, or a batch waits for it

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.worker = EngineWorker(jobs.Engine(), self)
        self.model_info: ModelSummary | None = None
        self.project_info: ProjectSummary | None = None
        self.queue_run: QueueRun | None = None  # set while the Queue runs its batches
        self._tasks: set[asyncio.Task] = set()
        self._shut_down = False  # after shutdown nothing starts: a view's timer may still fire
        self._busy_jobs: list[Job] = []
        # The model's one-time preparation for editing (a background job that does not make the
        # session busy): None when there is nothing to prepare, else "running", "cancelled" or "failed".
        self.preparation: str | None = None
        self.preparation_progress: Progress | None = None
        self.preparation_error = ""
        self._prep_job: Job | None = None
        self._waiting_batch: Job | None = None  # a run of batches queued behind the preparation
        self._waiting: list[Job] = []  # long jobs (a batch, an undo, an export) queued behind it
        self.worker.progress.connect(self._on_progress)

    # ---- running things ----------------------------------------------------------------------

    def start(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task | None:
        """Run a UI flow as a task we keep a reference to; failures take the default error path.
        None after shutdown (the window is closing and the worker is gone)."""
        if self._shut_down:
            coro.close()
            return None
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
            elif _widget_gone(error):  # the view that awaited the job was closed: nothing left to show
                log.warning("a flow outlived its view: %s", error)
            else:
                show_error(error)

        task.add_done_callback(done)
        return task

    def job(
        self,
        fn: Callable[..., Any],
        *,
        long: bool = False,
        busy: bool | None = None,
        cooperative: bool = False,
        on_yield: Callable[[Any], None] | None = None,
        **kwargs: Any,
    ) -> Job:
        """Run `fn(engine, ctx, **kwargs)` on the worker; `await` the job for its result.

        Every job of the app starts here. A `long` job is what Cancel (Esc) stops; unless `busy`
        says otherwise it also makes the session busy (progress shown, other long work off) while
        it runs. `on_yield` receives, on the main thread, what the job streams (chat tokens). A
        `cooperative` job lets chat, queue edits and log reads run between its steps.
        """
        job = self.worker.run(fn.__name__.replace("_", " "), fn, long=long, cooperative=cooperative,
                              on_yield=on_yield, **kwargs)
        if long if busy is None else busy:
            self._busy_jobs.append(job)
            if len(self._busy_jobs) == 1:
                self.busy_changed.emit(True)
            job.future.add_done_callback(lambda _f: self._busy_done(job))
        return job

    def _busy_done(self, job: Job) -> None:
        self._busy_jobs.remove(job)
        if not self._busy_jobs:
            self.busy_changed.emit(False)

    @property
    def busy(self) -> bool:
        return bool(self._busy_jobs)

    @property
    def busy_job_names(self) -> list[str]:
        """The running long jobs ("run queue", "export model"…): what quitting now would cancel."""
        return [job.name for job in self._busy_jobs]

    def cancel(self) -> None:
        """Cancel the running long jobs (Esc, the status bar's Cancel); they leave no trace. The
        model's preparation only when nothing else runs: Esc that stops a chat reply or a batch
        keeps the preparation going (the card's own Cancel stops it)."""
        others = [job for job in self.worker.long_jobs if job is not self._prep_job]
        if not others:
            self.cancel_preparation()
            return
        if self._busy_jobs:
            self.status_message.emit("Cancelling…")
        for job in others:
            job.cancel()

    def _on_progress(self, job: Job, progress: Progress) -> None:
        if self.queue_run is not None and job.fn is jobs.run_queue:
            self.queue_run.begin()
        if job is self._prep_job:
            self.preparation_progress = progress
            self.preparation_changed.emit()
        if job.long:
            self.progress.emit(progress)

    # ---- the model's one-time preparation ------------------------------------------------------

    @property
    def preparing(self) -> bool:
        return self.preparation == "running"

    @property
    def job_waits(self) -> bool:
        """A batch, an undo or an export is queued behind the model's preparation."""
        return bool(self._waiting)

    async def _behind_preparation(self, job: Job) -> Any:
        """Await a long job just queued; while the model's preparation runs before it, say that it waits."""
        if self.preparing:
            self._waiting.append(job)
            self.preparation_changed.emit()
            self.status_message.emit(WAITING_FOR_PREPARATION)
        try:
            return await job
        finally:
            if job in self._waiting:
                self._waiting.remove(job)
                self.preparation_changed.emit()

    def prepare_model(self) -> None:
        """Start (or resume) preparing the open project's model for editing in the background: the
        card on the Model screen and the status bar show it; chat and queue edits go on meanwhile."""
        if self._prep_job is not None or self.project_info is None or self.project_info.prepared:
            return
        job = self._prep_job = self.job(jobs.prepare_model, long=True, busy=False, cooperative=True)
        self.preparation, self.preparation_progress, self.preparation_error = "running", None, ""
        self.preparation_changed.emit()
        self.start(self._prepared(job))

    def cancel_preparation(self) -> None:
        """Stop the preparation (and a batch waiting for it); the project stays open."""
        for job in (self._prep_job, self._waiting_batch):
            if job is not None:
                job.cancel()

    async def _prepared(self, job: Job) -> None:
        try:
            info = await job
        except Cancelled:
            if self.preparation is not None:
                self._end_preparation("cancelled")
                self.status_message.emit("Preparation cancelled; the project stays open. A batch prepares the model "
                                         "first (or Prepare now on the Model screen).")
            return
        except Exception as error:
            if self.preparation is not None:
                if self._waiting_batch is not None:  # it would only fail the same way
                    self._waiting_batch.cancel()
                self._end_preparation("failed", str(error))
            raise
        shown = self.preparation_progress is not None  # not when everything was cached
        self._end_preparation(None)
        if self.project_info is not None and info.folder == self.project_info.folder:
            derived = info.settings != self.project_info.settings
            self.project_info = info
            if derived:  # the settings are known now (the Advanced panel, the edited layers)
                self.project_changed.emit(info)
        if shown:
            self.status_message.emit("The model is prepared for editing; the next projects on it open ready.")

    def _end_preparation(self, state: str | None, error: str = "") -> None:
        self._prep_job = self._waiting_batch = None  # a waiting batch runs now (and prepares what is left)
        self._waiting.clear()
        self.preparation, self.preparation_error = state, error
        self.preparation_changed.emit()

    # ---- flows -------------------------------------------------------------------------------

    async def load_model(self, source: str) -> ModelSummary:
        self.cancel_preparation()  # it was for the model this one replaces
        info = await self.job(jobs.load_model, long=True, source=source)
        self.model_info = info
        had_project = self.project_info is not None
        self.project_info = None
        self._end_preparation(None)
        self.model_changed.emit(info)
        if had_project:
            self.project_changed.emit(None)
        self.status_message.emit(f"Loaded {info.name}.")
        return info

    async def open_project(
        self, folder: str, method: str | None = None, settings: dict[str, Any] | None = None
    ) -> ProjectSummary:
        """Open (or create) a project; with no model loaded, load the one the project edits.
        `method` and `settings` are a new project's choices (an existing one keeps its own)."""
        if self.model_info is None:
            base = await self.job(jobs.project_base_model, folder=folder)
            if base is None:
                raise ProjectError("Load a model first: a new project edits the model that is loaded.")
            await self.load_model(base)
        if self.preparing:
            self.status_message.emit("Opening the project once the model's one-time preparation is done "
                                     "(Cancel it on the Model screen to open the project now)…")
        info = await self.job(jobs.open_project, long=True, folder=folder, method=method, settings=settings)
        self.project_info = info
        self._end_preparation(None)
        remember_project(folder)
        self.project_changed.emit(info)
        self.status_message.emit(f"Opened project {info.name}.")
        self.prepare_model()
        return info

    async def queue_facts(self, requests: list[EditRequest]) -> list[int]:
        ids = await self.job(jobs.queue_facts, requests=requests)
        self.facts_changed.emit()
        return ids

    async def import_file(self, path: str) -> ImportSummary:
        result = await self.job(jobs.import_file, long=True, path=path)
        self.facts_changed.emit()
        return result

    async def update_fact(self, fact_id: int, request: EditRequest) -> None:
        await self.job(jobs.update_fact, fact_id=fact_id, request=request)
        self.facts_changed.emit()

    async def remove_facts(self, fact_ids: list[int]) -> None:
        await self.job(jobs.remove_facts, fact_ids=fact_ids)
        self.facts_changed.emit()

    async def reorder_queue(self, fact_ids: list[int]) -> None:
        await self.job(jobs.reorder_queue, fact_ids=fact_ids)
        self.facts_changed.emit()

    async def run_queue(
        self, fact_ids: list[int], batch_size: int, overrides: dict[str, Any],
        on_batch: Callable[[BatchChanges], None] | None = None,
    ) -> list[BatchChanges]:
        """Edit the model with these queued facts as consecutive batches (one job: jobs.run_queue),
        broadcasting each batch's changes (`changed`, then `on_batch`) as it is committed; behind the
        model's preparation if it is not done (the run waits, saying so, while chat and queue reads go on)."""
        if not fact_ids:
            return []
        self.prepare_model()  # resumes a cancelled or failed preparation
        run = self.queue_run = QueueRun(batches=-(-len(fact_ids) // batch_size))
        done: list[BatchChanges] = []

        def batch_done(changes: BatchChanges) -> None:
            done.append(changes)
            self.changed.emit(changes)
            applied, failed = len(changes.applied_fact_ids), len(changes.failed)
            pulled_back = f" {changes.refreshed} earlier edits it had moved were pulled back." if changes.refreshed else ""
            self.status_message.emit(f"Batch done: {applied} applied, {failed} not applied.{pulled_back}")
            run.done += 1
            if on_batch is not None:
                on_batch(changes)

        job = self.job(jobs.run_queue, long=True, cooperative=True, on_yield=batch_done, fact_ids=fact_ids,
                       batch_size=batch_size, overrides=overrides)
        if self.preparing:
            self._waiting_batch = job
        try:
            await self._behind_preparation(job)
        finally:
            if self._waiting_batch is job:
                self._waiting_batch = None
            self.queue_run = None
        return done

    async def requeue_not_held(self, batch_ids: list[int]) -> list[Retry]:
        """Queue again the applied facts of these batches that did not hold (Retry)."""
        retries = await self.job(jobs.requeue_not_held, batch_ids=batch_ids)
        self.facts_changed.emit()
        new = sum(r.new for r in retries)
        already = len(retries) - new
        parts = [f"Queued {_facts(new)} that did not hold again"] if new else []
        if already:
            parts.append(f"{_facts(already)} that did not hold {'is' if already == 1 else 'are'} already queued")
        self.status_message.emit(
            f"{'; '.join(parts)}; the next run edits {'it' if len(retries) == 1 else 'them'}."
            if retries else "No fact that did not hold is left to retry."
        )
        return retries

    async def requeue_facts(self, fact_ids: list[int], batch_ids: list[int]) -> list[int]:
        """Queue again undone or failed facts: these, and those of these batches (Queue again)."""
        queued = await self.job(jobs.requeue_facts, fact_ids=fact_ids, batch_ids=batch_ids)
        self.facts_changed.emit()
        self.status_message.emit(f"Queued {_facts(len(queued))} again; the next run edits "
                                 f"{'it' if len(queued) == 1 else 'them'}." if queued else "No fact was left to queue again.")
        return queued

    async def undo_last_batch(self) -> BatchChanges:
        changes = await self._behind_preparation(self.job(jobs.undo_last_batch, long=True))
        self.changed.emit(changes)
        self.status_message.emit("Undid the last batch.")
        return changes

    async def plan_export(self, folder: str) -> Any:
        """What exporting into `folder` would replace and how many edits it holds (an ExportPlan);
        raises for a folder an export may never write (the base model's, a project's)."""
        return await self.job(jobs.plan_export, folder=folder)

    async def export_model(self, folder: str, replace: bool = False, allow_unedited: bool = False) -> int:
        """Write the edited model with edits.json into `folder` (new or empty unless `replace`)."""
        count = await self._behind_preparation(self.job(jobs.export_model, long=True, folder=folder, replace=replace,
                                                        allow_unedited=allow_unedited))
        what = f"the edited model ({_facts(count)} edited; edits.json lists them)" if count else "the base model unchanged"
        self.status_message.emit(f"Exported {what} to {folder}.")
        return count

    def shutdown(self) -> None:
        self._shut_down = True
        for task in list(self._tasks):
            task.cancel()
        self.worker.shutdown()


WAITING_FOR_PREPARATION = "Waiting for the model's one-time preparation…"
def _widget_gone(error: BaseException) -> bool:
    """PySide's error for a call on a widget Qt has already deleted."""
    return isinstance(error, RuntimeError) and "already deleted" in str(error)


def _facts(count: int) -> str:
    """“1 fact”, “3 facts”."""
    return f"{count} fact{'' if count == 1 else 's'}"
