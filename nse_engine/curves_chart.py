"""`nse bench-chart`: a lifelong run's checkpoint curves as one PNG (for docs/benchmarks.md).

Four panels against edits applied: the edits themselves (retention of the first facts, the newest
facts), what stays untouched and readable (specificity, chat answer, subject spelled), fluency,
and cost (seconds per edit and peak memory per block). Several runs share the panels, one line
style each. matplotlib's Agg backend draws without a display and without Qt.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
from matplotlib import pyplot  # noqa: E402  (the backend must be chosen first)

from nse_engine.bench_curves import COST_FIGURES, FLUENCY, SHARE_FIGURES, RunCurves  # noqa: E402

STYLES = ("-", "--", ":", "-.")
COLOURS = ("#1f5fa8", "#138d90", "#d9822b", "#b3261e", "#7b3fa0", "#1b7f3b", "#555555")
# (panel title, figure keys, y range or None)
PANELS = (
    ("Edits held", ("retention_first", "generation_first", "efficacy_last", "generation_last"), (0.0, 1.02)),
    ("Untouched and readable", ("specificity", "chat_answer", "subject_spelling"), (0.0, 1.02)),
    ("Fluency", ("fluency",), None),
    ("Cost per block", ("seconds_per_edit", "peak_rss_mb"), None),
)
LABELS = dict((*SHARE_FIGURES, FLUENCY, *COST_FIGURES))


def write_curves_chart(runs: Sequence[RunCurves], png: Path) -> None:
    """Draw `runs` (one line style each, named after their files) into `png`."""
    figure, axes = pyplot.subplots(2, 2, figsize=(12, 8), constrained_layout=True)
    for ax, (title, keys, y_range) in zip(axes.flat, PANELS):
        cost = "seconds_per_edit" in keys
        memory_ax = ax.twinx() if cost else None
        for r, run in enumerate(runs):
            style = STYLES[r % len(STYLES)]
            for k, key in enumerate(keys):
                xs, ys = run.series(key)
                target = memory_ax if cost and key == "peak_rss_mb" else ax
                name = LABELS[key] if len(runs) == 1 else f"{run.name}: {LABELS[key]}"
                target.plot(xs, ys, style, marker="o", markersize=3, color=COLOURS[k % len(COLOURS)], label=name)
        ax.set_title(title)
        ax.set_xlabel("edits applied")
        ax.grid(alpha=0.3)
        if y_range:
            ax.set_ylim(*y_range)
        if memory_ax is not None:
            ax.set_ylabel(LABELS["seconds_per_edit"])
            memory_ax.set_ylabel(LABELS["peak_rss_mb"])
            lines = ax.get_legend_handles_labels()
            more = memory_ax.get_legend_handles_labels()
            ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=7, loc="best")
        else:
            ax.legend(fontsize=7, loc="lower left")
    names = ", ".join(f"{run.name} ({run.model}, {run.method}{'' if run.complete else ', unfinished'})" for run in runs)
    figure.suptitle(f"Checkpoints of {names}", fontsize=10)
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(png, dpi=110)
    pyplot.close(figure)
