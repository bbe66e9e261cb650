"""Measure how long NSE Studio's event loop stalls while an edit batch runs on the worker.

A QTimer fires every 10 ms on the GUI thread; each tick records how late it came. The figure
printed is the longest gap beyond the interval while the batch runs (target: under 100 ms).
Run it on a quiet machine:

    python scripts/measure_ui_stall.py [--model default] [--facts 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_API", "pyside6")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# the same thread budget the app sets in nse_app.main before torch is imported
os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 2) - 1)))

from PySide6.QtCore import QElapsedTimer, QObject, QSettings, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402


class StallMeter(QObject):
    """Records how late each tick of a fast timer on the GUI thread arrives."""

    def __init__(self, interval_ms: int = 10) -> None:
        super().__init__()
        self.interval_ms = interval_ms
        self.lateness_ms: list[float] = []
        self.phase = ""  # the job phase shown when a tick came, to tell which step stalls
        self.worst_phase = ""
        self._clock = QElapsedTimer()
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)

    def start(self) -> None:
        self.lateness_ms.clear()
        self.worst_phase = ""
        self._clock.start()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    def _tick(self) -> None:
        elapsed = self._clock.nsecsElapsed() / 1e6
        self._clock.restart()
        late = max(0.0, elapsed - self.interval_ms)
        if late > max(self.lateness_ms, default=0.0):
            self.worst_phase = self.phase
        self.lateness_ms.append(late)

    def summary(self) -> str:
        if not self.lateness_ms:
            return "no ticks recorded"
        ordered = sorted(self.lateness_ms)
        p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
        return (f"longest stall {ordered[-1]:.1f} ms (during '{self.worst_phase}'), 99th percentile "
                f"{p99:.1f} ms, median {ordered[len(ordered) // 2]:.1f} ms over {len(ordered)} ticks")


async def measure(args: argparse.Namespace) -> int:
    from nse_app import jobs
    from nse_app.main import preload_engine
    from nse_app.main_window import MainWindow
    from nse_app.resources import resource
    from nse_app.session import Session

    preload_engine()  # as the app does before its window shows
    session = Session()
    window = MainWindow(session)
    window.show()
    meter = StallMeter(args.interval)
    session.progress.connect(lambda p: setattr(meter, "phase", f"{p.phase} {p.message}".strip()))

    meter.start()
    started = time.monotonic()
    await session.load_model(args.model)
    meter.stop()
    print(f"load model ({time.monotonic() - started:.1f} s): {meter.summary()}")

    await session.open_project(str(Path(tempfile.mkdtemp(prefix="nse-stall-")) / "project"))
    await session.import_file(str(resource("sample_facts.csv")))
    queued = [f.fact_id for f in await session.job(jobs.queued_facts)][: args.facts]

    window.tabs.setCurrentWidget(window.queue_view)
    meter.start()
    started = time.monotonic()
    (changes,) = await session.run_queue(queued, len(queued), {})  # one batch
    meter.stop()
    print(f"edit batch of {len(queued)} facts ({time.monotonic() - started:.1f} s, "
          f"{len(changes.applied_fact_ids)} applied): {meter.summary()}")
    print(f"UI stall during the batch: {max(meter.lateness_ms, default=0.0):.0f} ms")
    window.close()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--facts", type=int, default=5, help="facts in the batch (from resources/sample_facts.csv)")
    parser.add_argument("--interval", type=int, default=10, help="timer interval in ms")
    args = parser.parse_args()
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, tempfile.mkdtemp(prefix="nse-stall-settings-"))
    app = QApplication([sys.argv[0]])
    from nse_app.main import configure_application, run_on_qt

    configure_application(app)
    return run_on_qt(measure(args))


if __name__ == "__main__":
    sys.exit(main())
