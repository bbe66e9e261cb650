"""A JobControl that draws engine progress as tqdm bars on stderr, one bar per phase."""

from __future__ import annotations

from tqdm import tqdm

from nse_engine.progress import JobControl, Progress


def progress_bar_control(disable: bool | None = None) -> JobControl:
    """Bars on a terminal; with `disable` None (tqdm's rule) none when stderr is a file or a pipe,
    so a redirected run's log holds its messages, not thousands of redrawn bars."""
    bars: dict[str, tqdm] = {}

    def show(p: Progress) -> None:
        bar = bars.get(p.phase)
        if bar is None:
            for other in bars.values():
                other.close()
            bar = bars[p.phase] = tqdm(total=p.total, desc=p.phase, leave=False, disable=disable)
        if p.total is not None and bar.total != p.total:
            bar.total = p.total
        bar.n = p.done
        if p.message:
            bar.set_postfix_str(p.message, refresh=False)
        bar.refresh()

    return JobControl(show)
