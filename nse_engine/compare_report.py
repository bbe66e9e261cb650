"""The files `nse compare` writes: compare.json, a Markdown table, and two charts (PNG).

Charts use matplotlib's Agg backend, which draws without a display and without Qt.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
from matplotlib import pyplot  # noqa: E402  (the backend must be chosen first)

from nse_engine.provenance import write_result  # noqa: E402

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
    lines = [
        f"{comparison['cases']} facts in rounds of {comparison['batch_size']} on {comparison['model']}; "
        f"before editing: efficacy {first['pre_efficacy']:.3f}, specificity {first['pre_specificity']:.3f}, "
        f"generation {first['pre_generation']:.3f}, fluency {first['fluency_before']:.2f}.",
        "",
        "| method | " + " | ".join(title for _, title, _ in COLUMNS) + " |",
        "|---" * (len(COLUMNS) + 1) + "|",
    ]
    for label, report in results.items():
        cells = [fmt.format(report[key]) if isinstance(report.get(key), (int, float)) else "–" for key, _, fmt in COLUMNS]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


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
