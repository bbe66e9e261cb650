"""Previewing a named pipe (or any file that is not a regular file) is refused at once with a
message, instead of a preview that waits forever and cannot be cancelled."""

from __future__ import annotations

import os

from app.conftest import error_dialogs, wait_idle


def test_previewing_a_named_pipe_says_why_at_once(qtbot, window, tmp_path):
    fifo = tmp_path / "facts.csv"
    os.mkfifo(fifo)
    try:
        window.import_view.preview(str(fifo))
        qtbot.waitUntil(lambda: bool(error_dialogs()), timeout=20_000)
        wait_idle(qtbot, window.session, timeout=20_000)
        [box] = error_dialogs()
        assert "named pipe" in box.text() and str(fifo) in box.text()
        box.close()
    finally:  # a reader still blocked on the pipe (the code before the fix) gets its end of file
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass
