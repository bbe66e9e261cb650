"""Opening a file the user names to be read (a fact file), refusing anything but a regular file.

A named pipe blocks `open` until something writes to it, and a device such as /dev/zero never
ends, so reading either would hang the CLI and the app with nothing to cancel. The file is opened
without blocking and checked on the open handle, so it cannot be swapped between check and read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import IO

from nse_engine.errors import ImportFormatError

_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"))


def open_regular_file(path: Path) -> IO[bytes]:
    """`path` opened for reading in binary; `ImportFormatError` naming it when it is not a regular
    file or cannot be read."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except IsADirectoryError:  # Windows cannot open a folder at all
        raise ImportFormatError(f"{path} is a folder, not a fact file") from None
    except OSError as exc:
        raise ImportFormatError(f"cannot read {path}: {exc.strerror or exc}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
        raise ImportFormatError(f"{path} is {kind}, not a fact file; save the facts to a file and import that")
    if hasattr(os, "set_blocking"):
        os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")
