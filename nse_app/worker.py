"""The engine worker: one thread owns the model and runs every job on it, strictly in order.

A job is a plain function `fn(engine, ctx, **kwargs)` that receives the engine objects (never a
widget). Its result or error comes back to the main thread through a Qt signal, where the
job's callbacks run and its asyncio future (if any) is resolved, so UI code can `await` it.

A `cooperative` long job (the model's one-time preparation) lets short jobs marked with
`between_chunks` (chat replies, queue edits, log reads) run at its pause points, on this same
thread: they jump ahead of the other waiting jobs, and the model is never used by two at once.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

from PySide6.QtCore import QObject, Signal, Slot

from nse_engine.errors import Cancelled
from nse_engine.progress import JobControl, Progress

log = logging.getLogger(__name__)

# Progress records closer together than this are dropped (phase changes and the last one are
# kept), so a chatty engine loop cannot flood the GUI thread with queued signals.
_PROGRESS_INTERVAL_S = 0.05

F = TypeVar("F", bound=Callable[..., Any])


def between_chunks(fn: F) -> F:
    """Mark a job function that may run at the pause points of a cooperative job: it is short,
    and it neither replaces the model or the project nor changes the model's weights for good."""
    fn.between_chunks = True  # type: ignore[attr-defined]
    return fn


class JobContext:
    """What a job function gets besides the engine: progress and cancellation, and a way to
    stream intermediate values (chat tokens) back to the main thread."""

    def __init__(self, control: JobControl, stop_event: threading.Event, send: Callable[[Any], None]) -> None:
        self.control = control
        self.stop_event = stop_event  # set on cancel; for engine loops that take an Event
        self._send = send

    def send(self, value: Any) -> None:
        """Deliver `value` to the job's on_yield callback on the main thread."""
        self._send(value)


@dataclass(eq=False)
class Job:
    """One queued unit of work and the main-thread callbacks waiting for its outcome."""

    name: str
    fn: Callable[..., Any]
    kwargs: dict[str, Any]
    on_success: Callable[[Any], None] | None = None
    on_failure: Callable[[BaseException], None] | None = None
    on_yield: Callable[[Any], None] | None = None
    long: bool = False  # a long job (load, batch, chat...) is what Cancel/Esc stops
    cooperative: bool = False  # lets `between_chunks` jobs run at its pause points
    future: asyncio.Future | None = None
    stop_event: threading.Event = field(default_factory=threading.Event)
    control: JobControl | None = None
    last_progress: Progress | None = None
    _last_emit: float = 0.0

    def __await__(self):
        if self.future is None:
            raise RuntimeError(f"job {self.name} was submitted with callbacks; it cannot be awaited")
        return self.future.__await__()

    @property
    def between_chunks(self) -> bool:
        return bool(getattr(self.fn, "between_chunks", False))

    def cancel(self) -> None:
        """Stop the job at its next check (thread-safe); a job not yet started never runs."""
        self.stop_event.set()
        if self.control is not None:
            self.control.cancel()


class EngineWorker(QObject):
    """Owns the engine state on a dedicated thread; the main thread only ever sees results."""

    progress = Signal(object, object)  # job, Progress

    _done = Signal(object, object, object)  # job, result, error: crosses from the worker thread
    _yielded = Signal(object, object)  # job, value
    _progressed = Signal(object, object)

    def __init__(self, engine: Any, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._engine = engine  # touched only on the worker thread
        self._waiting: deque[Job | None] = deque()  # None asks the thread to end
        self._wake = threading.Condition()
        self._pending: list[Job] = []  # main-thread view: queued or running jobs
        self._done.connect(self._on_done)
        self._yielded.connect(self._on_yielded)
        self._progressed.connect(self.progress)
        self._thread = threading.Thread(target=self._loop, name="nse-engine", daemon=True)
        self._thread.start()

    # ---- main thread -------------------------------------------------------------------------

    def submit(
        self,
        name: str,
        fn: Callable[..., Any],
        *,
        on_success: Callable[[Any], None] | None = None,
        on_failure: Callable[[BaseException], None] | None = None,
        on_yield: Callable[[Any], None] | None = None,
        long: bool = False,
        cooperative: bool = False,
        **kwargs: Any,
    ) -> Job:
        """Queue `fn(engine, ctx, **kwargs)`; callbacks run later on the main thread."""
        job = Job(name, fn, kwargs, on_success, on_failure, on_yield, long, cooperative)
        self._pending.append(job)
        self._put(job)
        return job

    def _put(self, job: Job | None) -> None:
        with self._wake:
            self._waiting.append(job)
            self._wake.notify()

    def run(
        self,
        name: str,
        fn: Callable[..., Any],
        *,
        long: bool = False,
        cooperative: bool = False,
        on_yield: Callable[[Any], None] | None = None,
        **kwargs: Any,
    ) -> Job:
        """Queue a job whose result can be awaited (`await worker.run(...)`) in qasync coroutines."""
        future = asyncio.get_running_loop().create_future()
        job = self.submit(name, fn, long=long, cooperative=cooperative, on_yield=on_yield, **kwargs)
        job.future = future
        return job

    @property
    def busy(self) -> bool:
        return bool(self._pending)

    @property
    def long_jobs(self) -> list[Job]:
        """The long jobs queued or running, oldest first."""
        return [job for job in self._pending if job.long]

    def cancel_long(self) -> None:
        """Cancel the long jobs, running or queued; quick queries still run so views stay fresh."""
        for job in self.long_jobs:
            job.cancel()

    def cancel_all(self) -> None:
        for job in list(self._pending):
            job.cancel()

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Cancel everything and let the thread finish its current step."""
        self.cancel_all()
        self._put(None)
        self._thread.join(timeout_s)

    @Slot(object, object)
    def _on_yielded(self, job: Job, value: Any) -> None:
        if job.on_yield is not None:
            job.on_yield(value)

    @Slot(object, object, object)
    def _on_done(self, job: Job, result: Any, error: BaseException | None) -> None:
        if job in self._pending:
            self._pending.remove(job)
        try:
            if error is None and job.on_success is not None:
                job.on_success(result)
            elif error is not None and job.on_failure is not None:
                job.on_failure(error)
        finally:  # a failing callback is a bug for the excepthook; whoever awaits still wakes up
            if job.future is not None and not job.future.done():
                if error is None:
                    job.future.set_result(result)
                else:
                    job.future.set_exception(error)

    # ---- worker thread -----------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._wake:
                while not self._waiting:
                    self._wake.wait()
                job = self._waiting.popleft()
            if job is None:
                close = getattr(self._engine, "close", None)
                if close is not None:
                    close()  # the engine's resources (an open project's lock) belong to this thread
                return
            self._run_one(job)

    def _run_one(self, job: Job) -> None:
        def on_progress(p: Progress) -> None:
            now = time.monotonic()
            last = job.last_progress
            keep = last is None or last.phase != p.phase or p.done == p.total
            if keep or now - job._last_emit >= _PROGRESS_INTERVAL_S:
                job._last_emit = now
                self._progressed.emit(job, p)
            job.last_progress = p

        job.control = JobControl(on_progress, self._run_between_chunks if job.cooperative else None)
        if job.stop_event.is_set():
            job.control.cancel()
        ctx = JobContext(job.control, job.stop_event, lambda value: self._yielded.emit(job, value))
        result: Any = None
        error: BaseException | None = None
        started = time.monotonic()
        try:
            job.control.check_cancelled()
            result = job.fn(self._engine, ctx, **job.kwargs)
        except Cancelled as exc:
            error = exc
            log.info("job %s cancelled", job.name)
        except Exception as exc:  # every failure goes back to the main thread's error path
            error = exc
            log.info("job %s failed: %s", job.name, exc, exc_info=True)
        else:
            log.info("job %s done in %.2fs", job.name, time.monotonic() - started)
        self._done.emit(job, result, error)

    def _run_between_chunks(self) -> None:
        """At a cooperative job's pause point: run the waiting `between_chunks` jobs, oldest first
        (a job that waits behind them keeps its place, and so does the end of the thread)."""
        while True:
            with self._wake:
                job = next((j for j in self._waiting if j is not None and j.between_chunks), None)
                if job is None:
                    return
                self._waiting.remove(job)
            self._run_one(job)
