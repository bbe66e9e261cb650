"""A JobControl that shows engine progress on stderr: tqdm bars on a terminal, plain lines
(each phase as it starts, then its progress and ETA every LINE_INTERVAL_S) in a log or pipe."""

from __future__ import annotations

import sys
import time
from typing import Callable

from tqdm import tqdm

from nse_engine.progress import JobControl, Progress

LINE_INTERVAL_S = 15.0  # a redirected run's log gets at most one line per phase this often


def progress_bar_control() -> JobControl:
    """Bars on a terminal; plain lines when stderr is a file or a pipe, so a redirected run's log
    says what it is doing and how long is left, without thousands of redrawn bars."""
    if not sys.stderr.isatty():
        return JobControl(_line_printer())
    bars: dict[str, tqdm] = {}

    def show(p: Progress) -> None:
        bar = bars.get(p.phase)
        if bar is None:
            for other in bars.values():
                other.close()
            bar = bars[p.phase] = tqdm(total=p.total, desc=p.phase, leave=False)
        if p.total is not None and bar.total != p.total:
            bar.total = p.total
        bar.n = p.done
        if p.message:
            bar.set_postfix_str(p.message, refresh=False)
        bar.refresh()

    return JobControl(show)


def _line_printer() -> Callable[[Progress], None]:
    """A line when a phase starts (or starts over), when it finishes, and every LINE_INTERVAL_S in between."""
    phase, last_line, ended = "", 0.0, False

    def show(p: Progress) -> None:
        nonlocal phase, last_line, ended
        now = time.monotonic()
        finished = bool(p.total) and p.done >= p.total
        if p.phase == phase and ((ended and finished) or (not ended and not finished and now - last_line < LINE_INTERVAL_S)):
            return
        phase, last_line, ended = p.phase, now, finished
        print(f"{p.phase}: {describe(p)}", file=sys.stderr, flush=True)

    return show


def describe(p: Progress) -> str:
    """'12/100 (12%), 3:05 left, <message>' or as much of it as is known."""
    parts = []
    if p.total:
        parts.append(f"{p.done}/{p.total} ({p.done / p.total:.0%})")
    eta = p.eta_s
    if eta is not None and p.total and p.done < p.total:
        parts.append(f"{int(eta // 60)}:{int(eta % 60):02d} left")
    if p.message:
        parts.append(p.message)
    return ", ".join(parts) or "started"
