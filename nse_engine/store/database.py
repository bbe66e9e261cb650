"""The project log's SQLite connection, its schema migrations and its key–value metadata.

Every part of the store works on the one `Database` handle a `Project` opens here. A writer's
connection uses WAL and durable commits; a reader's is opened read-only, so reading a log never
changes it (not even a file that turns out not to be a project log).
"""

from __future__ import annotations

import logging
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

from sqlite_utils import Database

from nse_engine.errors import ProjectError
from nse_engine.paths import PROJECT_LOG_FILE
from nse_engine.store import schema
from nse_engine.store.storage_errors import storage_error

log = logging.getLogger(__name__)

LOG_FILE = PROJECT_LOG_FILE
SQLITE_HEADER = b"SQLite format 3\x00"
BUSY_TIMEOUT_S = 10.0  # a reader and the writer can meet during a checkpoint; wait, don't fail


def check_log_file(path: Path) -> None:
    """Refuse, without touching it, a file that cannot be a project log (empty, or not SQLite)."""
    try:
        with open(path, "rb") as fh:
            header = fh.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise ProjectError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not header:
        raise ProjectError(
            f"{path} is empty (0 bytes), not a project log; it was left as it is. Put back a copy from a "
            f"backup (the editing states next to it need their log); to start a new project, choose another folder."
        )
    if header != SQLITE_HEADER:
        raise ProjectError(f"{path} is not a project log (not a SQLite file); it was left as it is.")


def connect(path: Path, read_only: bool = False, immutable: bool = False) -> Database:
    """A writer's connection (WAL, enforced foreign keys, durable commits) or a read-only one.

    `immutable` reads a log on read-only media, where SQLite cannot create its WAL index.
    """
    try:
        if read_only:
            options = "mode=ro&immutable=1" if immutable else "mode=ro"
            conn = sqlite3.connect(f"{Path(path).resolve().as_uri()}?{options}", uri=True, timeout=BUSY_TIMEOUT_S)
        else:
            conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S)
        db = Database(conn)
        db.execute("PRAGMA foreign_keys = ON")
        if not read_only:
            db.enable_wal()
            db.execute("PRAGMA synchronous = FULL")
    except sqlite3.DatabaseError as exc:
        raise storage_error(exc, path, "open the project log") from None
    return db


def fold_wal(db: Database) -> None:
    """Copy everything in the WAL into the database file, or raise: closing the connection would
    try too, but says nothing when it fails (a full disk), and the file alone would lack the tables."""
    busy, frames, folded = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    if busy or frames != folded:
        raise sqlite3.OperationalError("database or disk is full (the log's WAL could not be folded into it)")


def check_schema(db: Database, path: Path) -> None:
    """Refuse a SQLite file that is not a project log, or one written by a newer NSE Studio."""
    if not schema.MIGRATIONS.applied(db):
        raise ProjectError(f"{path} is a SQLite file but not an NSE Studio project; it was left as it is.")
    newer = schema.unknown_migrations(db)
    if newer:
        raise ProjectError(f"{path} was written by a newer NSE Studio (schema {', '.join(newer)}); update the app")


def migrate(db: Database, folder: Path) -> None:
    pending = schema.MIGRATIONS.pending(db)
    if pending:
        log.info("migrating %s: %s", folder, ", ".join(m.name for m in pending))
        schema.MIGRATIONS.apply(db)


def has_pending_migrations(db: Database) -> bool:
    return bool(schema.MIGRATIONS.pending(db))


def read_meta(db: Database, key: str) -> str | None:
    row = db.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
    return row[0] if row else None


def write_meta(db: Database, key: str, value: str | None) -> None:
    db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", [key, value])


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.astimezone()
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds")
