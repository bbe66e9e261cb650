"""The project log's SQLite connection, its schema migrations and its key–value metadata.

Every part of the store works on the one `Database` handle a `Project` opens here.
"""

from __future__ import annotations

import logging
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

from sqlite_utils import Database

from nse_engine.errors import ProjectError
from nse_engine.store import schema

log = logging.getLogger(__name__)


def connect(path: Path) -> Database:
    """A connection with WAL, enforced foreign keys and durable commits."""
    try:
        db = Database(path)
        db.execute("PRAGMA foreign_keys = ON")
        db.enable_wal()
        db.execute("PRAGMA synchronous = FULL")
    except sqlite3.DatabaseError as exc:
        raise ProjectError(f"{path} is not a readable project log: {exc}") from None
    return db


def check_schema(db: Database, path: Path) -> None:
    """Refuse a SQLite file that is not a project log, or one written by a newer NSE Studio."""
    if not schema.MIGRATIONS.applied(db):
        raise ProjectError(f"{path} is a SQLite file but not an NSE Studio project")
    newer = schema.unknown_migrations(db)
    if newer:
        raise ProjectError(f"{path} was written by a newer NSE Studio (schema {', '.join(newer)}); update the app")


def migrate(db: Database, folder: Path) -> None:
    pending = schema.MIGRATIONS.pending(db)
    if pending:
        log.info("migrating %s: %s", folder, ", ".join(m.name for m in pending))
        schema.MIGRATIONS.apply(db)


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
