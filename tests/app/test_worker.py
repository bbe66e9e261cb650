"""The engine worker: jobs run in order on one thread, results and errors come back on the
main thread, progress arrives as signals, and cancellation leaves a job unrun or stopped."""

from __future__ import annotations

import threading

import pytest

from nse_engine.errors import Cancelled, ModelLoadError

from nse_app.worker import EngineWorker, between_chunks


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


def test_a_cooperative_job_lets_short_jobs_run_at_its_pause_points_and_others_wait(qtbot, worker):
    """The model's preparation: chat replies and queue edits run between its steps, on the worker
    thread; a batch (not marked) keeps its place behind it."""
    finished = []

    def preparation(engine, ctx):
        with ctx.control.sharing():
            for i in range(2_000):
                ctx.control.report("computing statistics", i, 2_000)
                ctx.control.pause_point()
                ctx.stop_event.wait(0.005)
        finished.append("preparation")
        return "prepared"

    @between_chunks
    def short(engine, ctx):
        finished.append("short")
        return threading.current_thread().name

    def batch(engine, ctx):
        finished.append("batch")

    progress = []
    worker.progress.connect(lambda job, p: progress.append(p))
    results = []
    prep = worker.submit("prepare", preparation, long=True, cooperative=True, on_success=results.append,
                         on_failure=results.append)
    worker.submit("batch", batch, long=True)
    qtbot.waitUntil(lambda: bool(progress))
    worker.submit("short", short, on_success=results.append)
    qtbot.waitUntil(lambda: "nse-engine" in results)
    assert finished == ["short"] and progress[-1].shares_model  # ran while the preparation was under way
    prep.cancel()
    qtbot.waitUntil(lambda: not worker.busy)
    assert isinstance(results[-1], Cancelled) and finished == ["short", "batch"]


def test_pause_points_hand_nothing_over_while_held(qtbot, worker):
    """Weights rewound to the original ones (statistics of an edited model): no short job runs."""
    order = []

    def held(engine, ctx):
        with ctx.control.sharing(), ctx.control.holding():
            for i in range(50):
                ctx.control.report("computing statistics", i, 50)
                ctx.control.pause_point()
                ctx.stop_event.wait(0.01)
        order.append("held")

    @between_chunks
    def short(engine, ctx):
        order.append("short")

    progress = []
    worker.progress.connect(lambda job, p: progress.append(p))
    worker.submit("held", held, long=True, cooperative=True)
    qtbot.waitUntil(lambda: bool(progress))
    worker.submit("short", short)
    qtbot.waitUntil(lambda: not worker.busy)
    assert order == ["held", "short"] and not progress[-1].shares_model
