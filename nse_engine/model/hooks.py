"""Forward hooks that read what a pass computes and may end the pass early.

Reading keys or hidden states needs only the blocks up to the last one read; a hook that has
everything raises StopForward, and `run_until_stopped` runs a pass that may end that way. The
tracing of edits and the key statistics both use this, so the idiom is written once.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterable, Iterator

from torch.utils.hooks import RemovableHandle


class StopForward(Exception):
    """Raised by a hook once everything needed was captured: the modules above it never run."""


def run_until_stopped(forward: Callable[[], object]) -> None:
    """Run `forward` (one forward pass); a hook raising StopForward ends it there, quietly."""
    try:
        forward()
    except StopForward:
        pass


@contextmanager
def removing_hooks(handles: Iterable[RemovableHandle]) -> Iterator[None]:
    """The hooks of `handles` stay on inside the block and are removed however it ends."""
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
