"""The curves of a lifelong benchmark (`nse bench --checkpoint-every N`), read back from its result JSON.

`nse bench` writes one point per checkpoint under "checkpoints" (see bench_checkpoints.py); the
chart command and the app's Retention screen read them here. No torch: the app imports this module.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from nse_engine.errors import NseError

# (point key, what it measures), the figures drawn as shares (0–1)
SHARE_FIGURES = (
    ("retention_first", "efficacy on the first facts applied (retention)"),
    ("generation_first", "first facts: the completion says the new object"),
    ("efficacy_last", "efficacy on the last facts applied"),
    ("generation_last", "last facts: the completion says the new object"),
    ("specificity", "specificity (fixed neighbour sample)"),
    ("chat_answer", "chat answer (fixed sample)"),
    ("subject_spelling", "subject still spelled (fixed sample)"),
)
FLUENCY = ("fluency", "fluency (n-gram entropy)")
# (point key, what it costs): one figure per block of edits
COST_FIGURES = (
    ("seconds_per_edit", "seconds per edit in the block"),
    ("peak_rss_mb", "peak resident memory (MB)"),
    ("peak_cuda_mb", "peak GPU memory in the block (MB)"),
    ("state_mb", "editing-state file (MB)"),
    ("log_mb", "rounds record (MB)"),
)
FIGURE_KEYS = tuple(key for key, _label in (*SHARE_FIGURES, FLUENCY, *COST_FIGURES))


@dataclass(frozen=True)
class RunCurves:
    """The checkpoints of one benchmark run, as its result JSON holds them."""

    path: str
    model: str
    method: str
    cases: int
    every: int
    complete: bool  # False while the run is going or after a stop (rerun the command to resume)
    points: tuple[dict, ...]  # each: edits_applied, cases_done and the figures above (None: not measured)
    unedited: dict  # the same figures on the same samples before any edit (no last-facts figures)

    @property
    def name(self) -> str:
        return Path(self.path).stem

    def series(self, key: str) -> tuple[list[float], list[float]]:
        """(edits applied, value) of every point that measured `key`, the unedited model's at 0 edits first."""
        points = [{"edits_applied": 0, **self.unedited}, *self.points]
        measured = [p for p in points if p.get(key) is not None]
        return [float(p["edits_applied"]) for p in measured], [float(p[key]) for p in measured]


def read_run_curves(path: str | Path) -> RunCurves:
    """The curves in an `nse bench` result; `NseError` naming the file when it has none."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise NseError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise NseError(f"{path} is not JSON ({exc}); choose the file `nse bench --json` wrote") from None
    block = data.get("checkpoints") if isinstance(data, dict) else None
    points = block.get("points") if isinstance(block, dict) else None
    if not isinstance(points, list) or not all(isinstance(p, dict) and _is_count(p.get("edits_applied")) for p in points):
        raise NseError(f"{path} holds no checkpoint curves; run `nse bench --checkpoint-every N --json {path.name}` "
                       "to measure them")
    unedited = block.get("unedited") if isinstance(block.get("unedited"), dict) else {}
    for n, point in enumerate([unedited, *points]):
        wrong = [key for key in FIGURE_KEYS if key in point and not _number_or_none(point[key])]
        if wrong:
            where = "the unedited figures" if n == 0 else f"checkpoint {n}"
            raise NseError(f"{path}: {where} has a {wrong[0]} that is not a number; was the file edited by hand?")
    return RunCurves(
        path=str(path), model=str(data.get("model", "?")), method=str(data.get("method", "?")),
        cases=_whole(data.get("cases")), every=_whole(block.get("every")),
        complete=data.get("status") == "complete", points=tuple(points), unedited=unedited,
    )


def _number_or_none(value: object) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _whole(value: object) -> int:
    return int(value) if _number_or_none(value) and value is not None else 0
