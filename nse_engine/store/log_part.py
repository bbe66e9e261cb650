"""What every writing part of a project (its metadata, queue, batch history, chats) shares: the one
database handle, the log's path, and whether the project may be changed.

Each part is API: it refuses changes on a read-only project and turns disk failures into a
`StorageError` itself (`changes`, `reads`), so a caller holding a part gets the same messages
as any other. The read queries (log_queries.py) guard themselves the same way.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Callable, TypeVar, cast

from sqlite_utils import Database

from nse_engine.errors import ProjectError
from nse_engine.store.database import LOG_FILE
from nse_engine.store.log_queries import LogQueries
from nse_engine.store.storage_errors import storage_errors

_Method = TypeVar("_Method", bound=Callable[..., Any])


class Writability:
    """Whether a project may be changed (`read_only_reason` None: it may), and the refusal saying why not."""

    read_only_reason: str | None

    @property
    def read_only(self) -> bool:
        return self.read_only_reason is not None

    def require_writable(self, action: str) -> None:
        """Raise `ProjectError` saying why, when this project cannot be changed."""
        if self.read_only_reason is not None:
            raise ProjectError(f"cannot {action}: {self.read_only_reason}")


class LogPart(Writability):
    """One part of an open project; its `read_only_reason` is the project's."""

    def __init__(self, db: Database, queries: LogQueries, read_only_reason: str | None = None) -> None:
        self._db = db
        self._queries = queries
        self.read_only_reason = read_only_reason

    @property
    def state_dir(self) -> Path:
        return self._queries.state_dir

    @property
    def log_path(self) -> Path:
        return self.state_dir.parent / LOG_FILE


def changes(action: str) -> Callable[[_Method], _Method]:
    """A method that changes the log: refused on a read-only project; disk failures become StorageError."""

    def wrap(method: _Method) -> _Method:
        @functools.wraps(method)
        def run(self: LogPart, *args: Any, **kwargs: Any) -> Any:
            self.require_writable(action)
            with storage_errors(self.log_path, action):
                return method(self, *args, **kwargs)

        return cast(_Method, run)

    return wrap


def reads(method: _Method) -> _Method:
    """A method that only reads the log: disk failures become StorageError."""

    @functools.wraps(method)
    def run(self: LogPart, *args: Any, **kwargs: Any) -> Any:
        with storage_errors(self.log_path, "read the project log"):
            return method(self, *args, **kwargs)

    return cast(_Method, run)
