"""The files `nse compare` writes: compare.json, a Markdown table, and two charts (PNG).

Charts use matplotlib's Agg backend, which draws without a display and without Qt.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
from matplotlib import pyplot  # noqa: E402  (the backend must be chosen first)

from nse_engine.provenance import write_result  # noqa: E402

log = logging.getLogger(__name__)

# (report key, column title, format) of the table, in order.
COLUMNS = (
    ("efficacy", "efficacy", "{:.3f}"),
    ("generalization", "generalization", "{:.3f}"),
    ("specificity", "specificity", "{:.3f}"),
    ("specificity_unedited_neighbours", "unedited neighbours", "{:.3f}"),
    ("top1", "top-1", "{:.3f}"),
    ("generation", "generation", "{:.3f}"),
    ("generation_paraphrase", "paraphrase generation", "{:.3f}"),
    ("chat_answer", "chat answer", "{:.3f}"),
    ("neighbour_generation", "neighbour generation", "{:.3f}"),
    ("subject_spelling", "subject spelling", "{:.3f}"),
    ("first_round_retention", "first-round retention", "{:.2f}"),
    ("fluency_after", "fluency", "{:.2f}"),
    ("seconds_per_edit", "s / edit", "{:.2f}"),
    ("peak_rss_mb", "peak MB", "{:.0f}"),
)

# the unedited model's figures in the table's first line
BEFORE = (
    ("pre_efficacy", "efficacy", "{:.3f}"),
    ("pre_specificity", "specificity", "{:.3f}"),
    ("pre_generation", "generation", "{:.3f}"),
    ("fluency_before", "fluency", "{:.2f}"),
)


def read_comparison(folder: Path) -> dict | None:
    """The comparison saved in `folder` (compare.json), or None where there is none or it is unreadable."""
    path = Path(folder) / "compare.json"
    if not path.exists():
        return None
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("%s is not readable (%s); every method runs again", path, exc)
        return None
    return saved if isinstance(saved, dict) and isinstance(saved.get("results"), dict) else None


def write_comparison(folder: Path, comparison: dict) -> list[Path]:
    """compare.json, compare.md, retention.png and generation.png in `folder`; returns their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = [folder / "compare.json", folder / "compare.md", folder / "retention.png", folder / "generation.png"]
    write_result(written[0], comparison)
    written[1].write_text(markdown_table(comparison), encoding="utf-8")
    _chart(comparison, "retention_curve", "efficacy_on_earlier", "earlier edits retained", written[2])
    _chart(comparison, "generation_curve", "generation_on_applied", "edits the model says (greedy)", written[3])
    return written


def markdown_table(comparison: dict) -> str:
    results = comparison["results"]
    first = next(iter(results.values()))
    before = ", ".join(f"{title} {_cell(first, key, fmt)}" for key, title, fmt in BEFORE)
    lines = [
        f"{comparison['cases']} facts in rounds of {comparison['batch_size']} on {comparison['model']}; "
        f"before editing: {before}.",
        "",
        "| method | " + " | ".join(title for _, title, _ in COLUMNS) + " |",
        "|---" * (len(COLUMNS) + 1) + "|",
    ]
    for label, report in results.items():
        cells = [_cell(report, key, fmt) for key, _, fmt in COLUMNS]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _cell(report: dict, key: str, fmt: str) -> str:
    """A figure formatted, or "–" where the run could not measure it (e.g. facts without neighbours)."""
    value = report.get(key)
    return fmt.format(value) if isinstance(value, (int, float)) else "–"


def _chart(comparison: dict, curve: str, value: str, ylabel: str, path: Path) -> None:
    figure, axes = pyplot.subplots(figsize=(7, 4.2), dpi=120)
    for label, report in comparison["results"].items():
        points = report.get(curve) or []
        axes.plot([p["edits_applied"] for p in points], [p[value] for p in points], marker="o", label=label)
    axes.set_xlabel("edits applied")
    axes.set_ylabel(ylabel)
    axes.set_ylim(0, 1.02)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)
    pyplot.close(figure)
