"""The Retention screen: how edits hold up as more are applied, updated after every batch.

Curves are created once and updated with setData (pyqtgraph leaks recreated plots on recent
PySide6); x and y are passed as Python float lists, since the app does no numpy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import pyqtgraph as pg
from PySide6.QtWidgets import (
    QComboBox, QFrame, QHBoxLayout, QLabel, QVBoxLayout, QWidget,
)

from nse_engine.bench_curves import RunCurves, read_run_curves
from nse_engine.errors import NseError, OutputFileError
from nse_engine.method_names import method_label
from nse_engine.store.log_rows import BatchChanges, ProjectSeries, RetentionRow
from nse_engine.store.output_paths import check_output_path

from nse_app import jobs
from nse_app.diagnostics import show_error
from nse_app.recent_projects import recent_projects
from nse_app.session import Session
from nse_app.views import file_dialogs
from nse_app.views.elided_label import ElidedLabel
from nse_app.views.run_curves import RunCurvesOverlay
from nse_app.views.wiring import push_button, show_job_result

pg.setConfigOptions(antialias=True, background="w", foreground="#333333")

# (RetentionRow attribute, legend name, colour, dashed)
RETENTION_LINES = (("share", "earlier edits retained", "#1f5fa8", False),
                   ("first_batch_share", "first batch's edits retained", "#d9822b", True),
                   ("says_new", "held: says it in completion and chat (the batch's facts)", "#138d90", False))
QUALITY_LINES = (("efficacy", "efficacy (the batch's own edits)", "#1f5fa8", False),
                 ("generalization", "generalisation (paraphrases)", "#1b7f3b", False),
                 ("specificity", "specificity (neighbourhood)", "#7b3fa0", False))
FLUENCY_LINES = (("fluency", "fluency", "#b3261e", False),)
# Another project's lines, drawn in grey over the retention chart and named after that project.
OVERLAY_LINES = (("share", "earlier edits retained", "#7a7a7a", False),
                 ("first_batch_share", "first batch's edits retained", "#7a7a7a", True),
                 ("says_new", "held in completion and chat", "#b0b0b0", False))
NO_OVERLAY = "Compare with a recent project…"
FEW_BATCHES = 3  # below this many batches a chart is a dot or two: the figures are shown as numbers too
# (RetentionRow attribute, card title, shown as a share)
CARDS = (("share", "earlier edits retained", True), ("says_new", "held (completion and chat)", True),
         ("efficacy", "efficacy", True), ("generalization", "generalisation", True),
         ("specificity", "specificity", True), ("fluency", "fluency", False))


class _EditsAxis(pg.AxisItem):
    """An x axis of whole edits: no tick at 2.5 edits, and thousands grouped."""

    def tickSpacing(self, minVal: float, maxVal: float, size: float) -> list[tuple[float, float]]:  # noqa: N802,N803
        return [(spacing, offset) for spacing, offset in super().tickSpacing(minVal, maxVal, size) if spacing >= 1] or [(1.0, 0.0)]

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:  # noqa: N802
        return [f"{round(v):,}" for v in values]


class _Lines:
    """A fixed set of lines on one plot, each a curve plus hoverable points naming the batch."""

    def __init__(self, plot: pg.PlotItem, lines: tuple, in_legend: bool = True) -> None:
        self.plot = plot
        self.names = {key: name for key, name, _colour, _dashed in lines}
        self.curves: dict[str, tuple[pg.PlotDataItem, pg.ScatterPlotItem]] = {}
        for key, name, colour, dashed in lines:
            pen = pg.mkPen(colour, width=2, style=pg.QtCore.Qt.PenStyle.DashLine if dashed else pg.QtCore.Qt.PenStyle.SolidLine)
            curve = plot.plot([], [], pen=pen, name=name if in_legend else None)
            points = pg.ScatterPlotItem(size=9, brush=pg.mkBrush(colour), pen=pg.mkPen("w"),
                                        hoverable=True, hoverSize=13, tip=self._tip(key))
            plot.addItem(points)
            self.curves[key] = (curve, points)

    def _tip(self, key: str):
        def tip(x: float, y: float, data: Any) -> str:
            return f"batch {data}\n{int(x)} edits applied\n{self.names[key]}: {y:.3f}"
        return tip

    def update(self, series: Sequence[RetentionRow]) -> int:
        """Show `series`; returns how many points were drawn."""
        drawn = 0
        for key, (curve, points) in self.curves.items():
            measured = [p for p in series if getattr(p, key) is not None]
            xs = [float(p.edits_applied) for p in measured]
            ys = [float(getattr(p, key)) for p in measured]
            batches = [p.batch_id for p in measured]
            curve.setData(xs, ys)
            points.setData(x=xs, y=ys, data=batches)
            drawn += len(xs)
        return drawn

    def label(self, prefix: str | None, lines: tuple) -> None:
        """Name the lines in the legend "prefix: name", or take them out of it (None)."""
        legend = self.plot.legend
        for key, name, _colour, _dashed in lines:
            curve = self.curves[key][0]
            legend.removeItem(curve)
            self.names[key] = name if prefix is None else f"{prefix}: {name}"
            if prefix is not None:
                legend.addItem(curve, self.names[key])


class _Chart:
    """One plot with its lines, a legend and a note shown when its batches have no measurements."""

    def __init__(self, plot: pg.PlotItem, lines: tuple, y_range: tuple[float, float] | None, before_first: str) -> None:
        self.plot = plot
        plot.showGrid(x=True, y=True, alpha=0.25)
        plot.setAxisItems({"bottom": _EditsAxis("bottom")})
        if len(lines) > 1:  # bottom left: new points land on the right, and shares stay high
            plot.addLegend(offset=(10, -10))
        plot.setLabel("bottom", "edits applied")
        if y_range is not None:
            plot.setYRange(*y_range, padding=0.05)
        self.before_first = before_first
        self.empty_text = pg.TextItem("", color="#888888", anchor=(0, 0))
        self.empty_text.setParentItem(plot.getViewBox())
        self.empty_text.setPos(10, 10)
        self.lines = _Lines(plot, lines, in_legend=len(lines) > 1)

    def update(self, series: list[RetentionRow]) -> int:
        """Show `series`; returns how many points were drawn. An empty chart says what will appear on it."""
        drawn = self.lines.update(series)
        self.empty_text.setText(self.before_first if not series else "no measurements for these batches")
        self.empty_text.setVisible(drawn == 0)
        return drawn


class RetentionView(QWidget):
    """Charts of the Session project's retention series; refreshes after every batch or undo.

    Another project's retention curves can be overlaid (a recent project, or any folder), read
    through a job that opens it read-only, so it may be open in another window meanwhile.
    """

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._session = session
        self.series: list[RetentionRow] = []
        self.point_count = 0  # points drawn on each chart, for tests and the summary
        self.quality_count = 0
        self.fluency_count = 0
        self.overlay: ProjectSeries | None = None
        self.overlay_count = 0
        self.run_count = 0  # points drawn of a loaded benchmark run
        self._overlay_request = 0  # counts overlay loads and clears: only the latest load is drawn
        self.graphics = pg.GraphicsLayoutWidget()
        retention = self.graphics.addPlot(row=0, col=0, title="Share of earlier edits still retained")
        quality = self.graphics.addPlot(row=1, col=0, title="Efficacy, generalisation and specificity")
        fluency = self.graphics.addPlot(row=2, col=0, title="Fluency (n-gram entropy of generated text)")
        quality.setXLink(retention)
        fluency.setXLink(retention)
        self.retention = _Chart(retention, RETENTION_LINES, (0.0, 1.0),
                                "After each batch: the share of earlier edits the model still gives")
        self.quality = _Chart(quality, QUALITY_LINES, (0.0, 1.0),
                              "After each batch: its own edits, their paraphrases and the facts nearby")
        self.fluency = _Chart(fluency, FLUENCY_LINES, None,
                              "After each batch: how varied the model's free text is (falls when edits damage it)")
        self.cards = QFrame()
        self.cards.setObjectName("retentionCards")
        self.card_labels: dict[str, QLabel] = {}
        cards_layout = QHBoxLayout(self.cards)
        for key, title, _share in CARDS:
            label = QLabel()
            label.setObjectName("retentionCard")
            label.setToolTip(title)
            self.card_labels[key] = label
            cards_layout.addWidget(label)
        self.overlay_lines = _Lines(retention, OVERLAY_LINES, in_legend=False)
        self.run_curves = RunCurvesOverlay((retention, quality, fluency))

        self.summary = QLabel("Run a batch of edits to see how earlier edits hold up.")
        self.summary.setObjectName("retentionSummary")
        save = push_button("Save chart as PNG…", self.save_png)
        self.overlay_picker = QComboBox()
        self.overlay_picker.setToolTip("Overlay another project's retention curves (in grey)")
        self.overlay_picker.activated.connect(self._picked)
        browse = push_button("Browse…", self.browse_overlay, tooltip="Overlay the curves of a project in another folder")
        self.clear_overlay_button = push_button("Clear overlay", self.clear_overlay)
        self.overlay_label = QLabel()
        self.overlay_label.setObjectName("overlayLabel")
        load_run = push_button(
            "Load run…", self.browse_run,
            tooltip="Draw the checkpoint curves of an `nse bench --checkpoint-every N` result (dotted)")
        self.clear_run_button = push_button("Clear run", lambda: self.show_run(None))
        self.run_label = ElidedLabel()
        self.run_label.setObjectName("runLabel")
        top = QHBoxLayout()
        top.addWidget(self.summary, 1)
        top.addWidget(save)
        compare = QHBoxLayout()
        compare.addWidget(self.overlay_picker, 1)
        compare.addWidget(browse)
        compare.addWidget(self.clear_overlay_button)
        compare.addWidget(self.overlay_label, 1)
        run_row = QHBoxLayout()
        run_row.addWidget(load_run)
        run_row.addWidget(self.clear_run_button)
        run_row.addWidget(self.run_label, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(compare)
        layout.addLayout(run_row)
        layout.addWidget(self.cards)
        layout.addWidget(self.graphics)

        session.changed.connect(self.apply_changes)
        session.project_changed.connect(lambda _info: self.refresh())
        session.project_changed.connect(lambda _info: self.refresh_picker())
        self.refresh_picker()
        self.show_overlay(None)
        self.show_run(None)

    def refresh(self) -> None:
        show_job_result(self._session, jobs.retention_points, self.show_series)

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
        self._fit_x()
        self._show_cards(series[-1] if 0 < len(series) < FEW_BATCHES else None)
        if not series:
            self.summary.setText("Run a batch of edits to see how earlier edits hold up.")
            return
        last = series[-1]
        text = (f"{len(series)} batch{'' if len(series) == 1 else 'es'}, "
                f"{last.edits_applied} edit{'' if last.edits_applied == 1 else 's'} applied.")
        if last.share is not None:
            text += f" After batch {last.batch_id}, {last.share:.0%} of earlier edits are retained."
        self.summary.setText(text)

    def _show_cards(self, last: RetentionRow | None) -> None:
        """The newest batch's figures as numbers, while the charts have too few points to read."""
        self.cards.setVisible(last is not None)
        if last is None:
            return
        for key, title, share in CARDS:
            value = getattr(last, key)
            shown = "—" if value is None else f"{value:.0%}" if share else f"{value:.2f}"
            self.card_labels[key].setText(f"<span style='font-size:15pt'><b>{shown}</b></span><br>{title}")

    # ---- the overlay -------------------------------------------------------------------------

    def refresh_picker(self) -> None:
        """The recent projects other than the open one; an overlay of the project just opened is dropped."""
        current = self._open_folder()
        self.overlay_picker.clear()
        self.overlay_picker.addItem(NO_OVERLAY, None)
        for folder in recent_projects():
            if not _same_folder(folder, current):
                self.overlay_picker.addItem(folder, folder)
        self.overlay_picker.setHidden(self.overlay_picker.count() == 1)  # nothing to choose: Browse… alone
        if self.overlay is not None and _same_folder(self.overlay.folder, current):
            self.clear_overlay()
        else:
            self._show_picked()

    def _open_folder(self) -> str | None:
        return self._session.project_info.folder if self._session.project_info else None

    def _picked(self, index: int) -> None:
        folder = self.overlay_picker.itemData(index)
        if folder:
            self.overlay_from(folder)
        else:
            self.clear_overlay()

    def browse_overlay(self) -> None:
        folder = file_dialogs.choose_folder(self, "Overlay the curves of the project in a folder", "overlay_folder")
        if folder:
            self.overlay_from(folder)

    def overlay_from(self, folder: str) -> None:
        self._overlay_request += 1
        self._session.start(self._load_overlay(folder, self._overlay_request))

    async def _load_overlay(self, folder: str, request: int) -> None:
        """Draw the curves read, unless another overlay was asked for (or cleared) meanwhile."""
        try:
            series = await self._session.job(jobs.project_series, folder=folder)
        except BaseException:
            if request == self._overlay_request:
                self._show_picked()  # the picker goes back to what is drawn
            raise
        if request != self._overlay_request:
            return
        current = self._open_folder()
        if _same_folder(series.folder, current):
            self._session.status_message.emit(f"{series.name} is the open project: its curves are drawn already.")
            self._show_picked()
            return
        self.show_overlay(series)

    def clear_overlay(self) -> None:
        self._overlay_request += 1  # a load still running is not drawn
        self.show_overlay(None)

    def show_overlay(self, series: ProjectSeries | None) -> None:
        """Draw `series` over the retention chart, named after its project and method (None: none)."""
        self.overlay = series
        self.overlay_count = self.overlay_lines.update(series.points if series else ())
        label = None if series is None else f"{series.name} ({method_label(series.method, series.switches)})"
        self.overlay_lines.label(label, OVERLAY_LINES)
        self.clear_overlay_button.setEnabled(series is not None)
        self.overlay_label.setText("" if series is None else f"Overlay: {label}, {len(series.points)} batches")
        self._show_picked()
        self._fit_x()

    def _show_picked(self) -> None:
        """The picker names the overlaid project (added when it was browsed to), or else the placeholder."""
        if self.overlay is None:
            self.overlay_picker.setCurrentIndex(0)
            return
        index = next((i for i in range(1, self.overlay_picker.count())
                      if _same_folder(self.overlay_picker.itemData(i), self.overlay.folder)), -1)
        if index < 0:
            self.overlay_picker.addItem(self.overlay.folder, self.overlay.folder)
            index = self.overlay_picker.count() - 1
        self.overlay_picker.setCurrentIndex(index)

    # ---- a benchmark run's curves ------------------------------------------------------------

    def browse_run(self) -> None:
        path = file_dialogs.open_file(self, "Load the curves of a benchmark run", "bench_run",
                                      "Benchmark results (*.json)")
        if path:
            self.load_run(path)

    def load_run(self, path: str) -> bool:
        """Draw the checkpoint curves of the `nse bench` result in `path`; a dialog says why not."""
        try:
            run = read_run_curves(path)
        except NseError as error:
            show_error(error, self)
            return False
        self.show_run(run)
        return True

    def show_run(self, run: RunCurves | None) -> None:
        self.run_count = self.run_curves.show(run)
        self.clear_run_button.setEnabled(run is not None)
        self.run_label.setText(self.run_curves.describe() or "Load run… draws a benchmark's checkpoint curves")
        self._fit_x()

    def _fit_x(self) -> None:
        """Room for the longest of the runs (the other charts follow: their x axes are linked)."""
        points = [*self.series, *(self.overlay.points if self.overlay else ())]
        last_x = max([float(p.edits_applied) for p in points] + [self.run_curves.last_x()]) or 1.0
        self.retention.plot.setXRange(0.0, last_x * 1.05 + 0.5, padding=0)

    def save_png(self) -> None:
        path = file_dialogs.save_file(self, "Save the charts", "save_charts", "retention.png", "PNG images (*.png)")
        if path:
            self.save_to(path)

    def save_to(self, path: str) -> bool:
        """Save the charts as a PNG where the dialog said, unless that is one of a project's own files."""
        try:
            check_output_path(Path(path))
        except OutputFileError as error:
            show_error(error, self)
            return False
        ok = self.graphics.grab().save(path, "PNG")
        self._session.status_message.emit(f"Saved the charts to {path}." if ok else f"Could not write {path}.")
        return ok


def _same_folder(a: str | None, b: str | None) -> bool:
    """Whether two folder paths name the same folder (None names none)."""
    return a is not None and b is not None and Path(a).resolve() == Path(b).resolve()
