"""A benchmark run's checkpoint curves (`nse bench --checkpoint-every N`) drawn over the Retention
screen's charts, beside the open project's, to compare a project with a long reference run.

The figures are already measured in the run's result JSON (nse_engine.bench_curves reads it); this
only draws them: dotted lines, named "run NAME: …" in the legends.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt

from nse_engine.bench_curves import RunCurves

# per chart (retention, quality, fluency): (checkpoint figure, legend name, colour)
RUN_LINES = (
    (("retention_first", "first facts retained", "#0b3d75"), ("chat_answer", "chat answer (fixed sample)", "#0a5e60")),
    (("efficacy_last", "efficacy (last facts)", "#0b3d75"), ("specificity", "specificity (neighbour sample)", "#4d2466")),
    (("fluency", "fluency", "#7a1812"),),
)


class RunCurvesOverlay:
    """Dotted lines of one run on the three charts; each curve is created once and updated with setData."""

    def __init__(self, plots: tuple[pg.PlotItem, pg.PlotItem, pg.PlotItem]) -> None:
        self.run: RunCurves | None = None
        self._lines: list[tuple[pg.PlotItem, str, str, pg.PlotDataItem]] = []
        for plot, lines in zip(plots, RUN_LINES):
            for key, name, colour in lines:
                pen = pg.mkPen(colour, width=2, style=Qt.PenStyle.DotLine)
                curve = plot.plot([], [], pen=pen, symbol="s", symbolSize=6, symbolBrush=colour, symbolPen=None)
                self._lines.append((plot, key, name, curve))

    def show(self, run: RunCurves | None) -> int:
        """Draw `run` (None: take it away); returns how many points were drawn."""
        self.run = run
        drawn = 0
        for plot, key, name, curve in self._lines:
            xs, ys = run.series(key) if run else ([], [])
            curve.setData(xs, ys)
            drawn += len(xs)
            if plot.legend is not None:
                plot.legend.removeItem(curve)
                if run is not None:
                    plot.legend.addItem(curve, f"run {run.name}: {name}")
        return drawn

    def drawn(self, key: str) -> tuple[list[float], list[float]]:
        """(x, y) drawn for a checkpoint figure, for tests and the summary."""
        curve = next(c for _plot, k, _name, c in self._lines if k == key)
        xs, ys = curve.getData()
        return ([float(x) for x in xs], [float(y) for y in ys]) if xs is not None else ([], [])

    def last_x(self) -> float:
        return max((float(p["edits_applied"]) for p in self.run.points), default=0.0) if self.run else 0.0

    def describe(self) -> str:
        """One line on the loaded run: what it is and where it stands."""
        if self.run is None:
            return ""
        run, points = self.run, self.run.points
        last = points[-1] if points else {}
        state = "" if run.complete else ", unfinished"
        figures = ", ".join(f"{label} {last[key]:.2f}" for key, label in (
            ("retention_first", "retention"), ("chat_answer", "chat answer"), ("subject_spelling", "subject spelled"))
            if last.get(key) is not None)
        return (f"Run {run.name} ({run.model}, {run.method}{state}): {len(points)} checkpoints to "
                f"{int(last.get('edits_applied', 0)):,} edits" + (f"; {figures}" if figures else ""))
