"""The engine worker: jobs run in order on one thread, results and errors come back on the
main thread, progress arrives as signals, and cancellation leaves a job unrun or stopped."""

from __future__ import annotations

import threading

import pytest

from nse_engine.errors import Cancelled, ModelLoadError

from nse_app.worker import EngineWorker


@pytest.fixture
def worker(qapp):
    w = EngineWorker(engine={"log": []})
    yield w
    w.shutdown()


def _record(engine, ctx, label):
    engine["log"].append((label, threading.current_thread().name))
    return label


def test_jobs_run_in_order_on_the_worker_thread(qtbot, worker):
    results = []
    for name in ("a", "b", "c"):
        worker.submit(name, _record, label=name, on_success=results.append)
    qtbot.waitUntil(lambda: len(results) == 3)
    assert results == ["a", "b", "c"]
    assert {thread for _name, thread in worker._engine["log"]} == {"nse-engine"}
    qtbot.waitUntil(lambda: not worker.busy)


def test_errors_reach_the_failure_callback(qtbot, worker):
    def fail(engine, ctx):
        raise ModelLoadError("no such model")

    errors = []
    worker.submit("fail", fail, on_failure=errors.append)
    qtbot.waitUntil(lambda: bool(errors))
    assert isinstance(errors[0], ModelLoadError)


def test_cancel_stops_a_running_job_and_skips_queued_ones(qtbot, worker):
    started = threading.Event()

    def long_job(engine, ctx):
        started.set()
        for i in range(10_000):
            ctx.control.report("working", i, 10_000)
            ctx.stop_event.wait(0.01)
        return "finished"

    outcomes = []
    progress = []
    worker.progress.connect(lambda job, p: progress.append(p))
    running = worker.submit("long", long_job, long=True, on_success=outcomes.append, on_failure=outcomes.append)
    queued = worker.submit("queued", long_job, long=True, on_success=outcomes.append, on_failure=outcomes.append)
    worker.submit("quick", _record, label="quick", on_success=outcomes.append)
    qtbot.waitUntil(lambda: bool(progress))
    assert started.is_set() and running.control is not None
    worker.cancel_long()
    qtbot.waitUntil(lambda: len(outcomes) == 3)
    assert isinstance(outcomes[0], Cancelled) and isinstance(outcomes[1], Cancelled)
    assert outcomes[2] == "quick"  # a query behind a cancelled batch still runs
    assert progress[0].phase == "working"
    assert queued.control is not None and queued.control.cancelled
