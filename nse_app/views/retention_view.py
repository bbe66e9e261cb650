"""The Retention screen: how edits hold up as more are applied, updated after every batch.

Curves are created once and updated with setData (pyqtgraph leaks recreated plots on recent
PySide6); x and y are passed as Python float lists, since the app does no numpy.
"""

from __future__ import annotations

from typing import Any

import pyqtgraph as pg
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from nse_engine.store.log_rows import BatchChanges, RetentionRow

from nse_app import jobs
from nse_app.session import Session

pg.setConfigOptions(antialias=True, background="w", foreground="#333333")

# (RetentionRow attribute, legend name, colour, dashed)
RETENTION_LINES = (("share", "earlier edits retained", "#1f5fa8", False),
                   ("first_batch_share", "first batch's edits retained", "#d9822b", True))
QUALITY_LINES = (("efficacy", "efficacy (the batch's own edits)", "#1f5fa8", False),
                 ("generalization", "generalisation (paraphrases)", "#1b7f3b", False),
                 ("specificity", "specificity (neighbourhood)", "#7b3fa0", False))
FLUENCY_LINES = (("fluency", "fluency", "#b3261e", False),)


class _Chart:
    """One plot with a fixed set of lines, each a curve plus hoverable points naming the batch."""

    def __init__(self, plot: pg.PlotItem, lines: tuple, y_range: tuple[float, float] | None) -> None:
        self.plot = plot
        plot.showGrid(x=True, y=True, alpha=0.25)
        plot.addLegend(offset=(-10, 10))
        plot.setLabel("bottom", "edits applied")
        if y_range is not None:
            plot.setYRange(*y_range, padding=0.05)
        self.empty_text = pg.TextItem("no measurements for these batches", color="#888888", anchor=(0.5, 0.5))
        self.empty_text.setParentItem(plot.getViewBox())
        self.empty_text.setPos(200, 60)
        self.empty_text.hide()
        self.curves: dict[str, tuple[pg.PlotDataItem, pg.ScatterPlotItem]] = {}
        for key, name, colour, dashed in lines:
            pen = pg.mkPen(colour, width=2, style=pg.QtCore.Qt.PenStyle.DashLine if dashed else pg.QtCore.Qt.PenStyle.SolidLine)
            curve = plot.plot([], [], pen=pen, name=name)
            points = pg.ScatterPlotItem(size=9, brush=pg.mkBrush(colour), pen=pg.mkPen("w"),
                                        hoverable=True, hoverSize=13, tip=self._tip(name))
            plot.addItem(points)
            self.curves[key] = (curve, points)

    @staticmethod
    def _tip(name: str):
        def tip(x: float, y: float, data: Any) -> str:
            return f"batch {data}\n{int(x)} edits applied\n{name}: {y:.3f}"
        return tip

    def update(self, series: list[RetentionRow]) -> int:
        """Show `series`; returns how many points were drawn."""
        drawn = 0
        last_x = max((float(p.edits_applied) for p in series), default=1.0)
        self.plot.setXRange(0.0, last_x * 1.05 + 0.5, padding=0)
        for key, (curve, points) in self.curves.items():
            measured = [p for p in series if getattr(p, key) is not None]
            xs = [float(p.edits_applied) for p in measured]
            ys = [float(getattr(p, key)) for p in measured]
            batches = [p.batch_id for p in measured]
            curve.setData(xs, ys)
            points.setData(x=xs, y=ys, data=batches)
            drawn += len(xs)
        self.empty_text.setVisible(drawn == 0 and bool(series))
        return drawn


class RetentionView(QWidget):
    """Charts of the Session project's retention series; refreshes after every batch or undo."""

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._session = session
        self.series: list[RetentionRow] = []
        self.point_count = 0  # points drawn on each chart, for tests and the summary
        self.quality_count = 0
        self.fluency_count = 0
        self.graphics = pg.GraphicsLayoutWidget()
        retention = self.graphics.addPlot(row=0, col=0, title="Share of earlier edits still retained")
        quality = self.graphics.addPlot(row=1, col=0, title="Efficacy, generalisation and specificity")
        fluency = self.graphics.addPlot(row=2, col=0, title="Fluency (n-gram entropy of generated text)")
        quality.setXLink(retention)
        fluency.setXLink(retention)
        self.retention = _Chart(retention, RETENTION_LINES, (0.0, 1.0))
        self.quality = _Chart(quality, QUALITY_LINES, (0.0, 1.0))
        self.fluency = _Chart(fluency, FLUENCY_LINES, None)

        self.summary = QLabel("Run a batch of edits to see how earlier edits hold up.")
        self.summary.setObjectName("retentionSummary")
        save = QPushButton("Save chart as PNG…")
        save.clicked.connect(self.save_png)
        top = QHBoxLayout()
        top.addWidget(self.summary, 1)
        top.addWidget(save)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.graphics)

        session.changed.connect(self.apply_changes)
        session.project_changed.connect(lambda _info: self.refresh())

    def refresh(self) -> None:
        self._session.start(self._refresh())

    async def _refresh(self) -> None:
        self.show_series(await self._session.job(jobs.retention_points))

    def apply_changes(self, changes: BatchChanges) -> None:
        """A batch adds its point, an undo takes it away (only the newest batch is ever undone)."""
        series = [p for p in self.series if p.batch_id != changes.batch_id]
        if changes.point is not None:
            series.append(changes.point)
        self.show_series(series)

    def show_series(self, series: list[RetentionRow]) -> None:
        self.series = series
        self.point_count = self.retention.update(series)
        self.quality_count = self.quality.update(series)
        self.fluency_count = self.fluency.update(series)
        if not series:
            self.summary.setText("Run a batch of edits to see how earlier edits hold up.")
            return
        last = series[-1]
        text = f"{len(series)} batches, {last.edits_applied} edits applied."
        if last.share is not None:
            text += f" After batch {last.batch_id}, {last.share:.0%} of earlier edits are retained."
        self.summary.setText(text)

    def save_png(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save the charts", "retention.png", "PNG images (*.png)")
        if path:
            self.save_to(path)

    def save_to(self, path: str) -> bool:
        ok = self.graphics.grab().save(path, "PNG")
        self._session.status_message.emit(f"Saved the charts to {path}." if ok else f"Could not write {path}.")
        return ok
