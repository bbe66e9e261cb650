"""The edit log's tables and their migrations, from the first schema version onward.

Each released schema change is a new migration appended to `MIGRATIONS`; sqlite-utils records
the applied ones in `_sqlite_migrations`, so an old project file is brought up to date on open.
Never change what a migration that has shipped does (its white space is free: SQLite keeps the
text, but the tables are the same).
"""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

MIGRATION_SET = "nse_project"
MIGRATIONS = Migrations(MIGRATION_SET)
_MIGRATION_NAMES: list[str] = []

FACT_STATUSES = ("queued", "applied", "failed", "undone")


def _migration(name: str):
    _MIGRATION_NAMES.append(name)
    return MIGRATIONS(name=name)


@_migration("0001_initial")
def _initial(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE meta (
            key TEXT PRIMARY KEY,
            value TEXT
        );
        CREATE TABLE facts (
            id INTEGER PRIMARY KEY,
            subject TEXT NOT NULL,
            prompt TEXT NOT NULL,              -- template with {} where the subject goes
            target_new TEXT NOT NULL,
            target_true TEXT,
            paraphrases TEXT NOT NULL DEFAULT '[]',   -- JSON list of full prompts
            neighborhood TEXT NOT NULL DEFAULT '[]',  -- JSON list of {prompt, target}
            relation TEXT,
            source_file TEXT,
            source_line INTEGER,
            created_at TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'queued'
                CHECK (status IN ('queued', 'applied', 'failed', 'undone')),
            batch_id INTEGER REFERENCES batches(id),  -- the last batch that ran this fact
            reason TEXT                                -- why it failed, when it did
        );
        CREATE TABLE state_files (
            id INTEGER PRIMARY KEY,
            file_name TEXT NOT NULL UNIQUE,    -- relative to the project's state folder
            sha256 TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('batch', 'undo')),
            batch_id INTEGER NOT NULL REFERENCES batches(id),
            created_at TEXT NOT NULL
        );
        CREATE TABLE batches (
            id INTEGER PRIMARY KEY,
            method TEXT NOT NULL,
            hparams TEXT NOT NULL,             -- JSON object
            started_at TEXT NOT NULL,
            finished_at TEXT NOT NULL,
            duration_s REAL NOT NULL,
            outcome TEXT NOT NULL CHECK (outcome IN ('applied', 'partial', 'failed')),
            state_id INTEGER REFERENCES state_files(id),       -- NULL: the model did not change
            undone_at TEXT,
            undo_state_id INTEGER REFERENCES state_files(id)
        );
        CREATE TABLE batch_facts (
            batch_id INTEGER NOT NULL REFERENCES batches(id), fact_id INTEGER NOT NULL REFERENCES facts(id),
            applied INTEGER NOT NULL, reason TEXT, distance_before REAL, distance_after REAL,
            PRIMARY KEY (batch_id, fact_id)
        );
        CREATE TABLE evaluations (
            batch_id INTEGER NOT NULL REFERENCES batches(id), fact_id INTEGER NOT NULL REFERENCES facts(id),
            retained INTEGER NOT NULL, prob_new REAL, prob_true REAL,
            PRIMARY KEY (batch_id, fact_id)
        );
        CREATE TABLE chats (
            id INTEGER PRIMARY KEY,
            prompt TEXT NOT NULL,
            answer TEXT NOT NULL,
            batch_id INTEGER REFERENCES batches(id),  -- last batch in effect; NULL: the base model
            created_at TEXT NOT NULL
        );
        CREATE INDEX facts_status ON facts(status);
        CREATE INDEX evaluations_fact ON evaluations(fact_id);
        """
    )


@_migration("0002_queue_order")
def _queue_order(db: Database) -> None:
    """The GUI reorders queued facts before a run; the order used to be the row id."""
    db.executescript(
        """
        ALTER TABLE facts ADD COLUMN position INTEGER NOT NULL DEFAULT 0;
        UPDATE facts SET position = id;
        """
    )


@_migration("0003_batch_metrics")
def _batch_metrics(db: Database) -> None:
    """Per-batch summary scores (retention, generalisation, specificity, fluency) for the charts."""
    db.executescript("ALTER TABLE batches ADD COLUMN metrics TEXT NOT NULL DEFAULT '{}';")


@_migration("0004_probabilities_before")
def _probabilities_before(db: Database) -> None:
    """What the model answered for each fact of a batch just before the batch edited it."""
    db.executescript(
        """
        ALTER TABLE batch_facts ADD COLUMN prob_new_before REAL;
        ALTER TABLE batch_facts ADD COLUMN prob_true_before REAL;
        """
    )


@_migration("0005_written_outcomes")
def _written_outcomes(db: Database) -> None:
    """What the model wrote after each fact's prompt when its batch ended, and whether it said
    the new object (the round verifies its facts by generation)."""
    db.executescript(
        """
        ALTER TABLE batch_facts ADD COLUMN continuation TEXT;
        ALTER TABLE batch_facts ADD COLUMN held INTEGER;
        ALTER TABLE batch_facts ADD COLUMN extra_passes INTEGER NOT NULL DEFAULT 0;
        """
    )


@_migration("0006_discarded_states")
def _discarded_states(db: Database) -> None:
    """`nse rollback` sets aside a damaged current state file (and any newer one) instead of deleting
    it; the current state is the newest state file not set aside."""
    db.executescript("ALTER TABLE state_files ADD COLUMN discarded_at TEXT;")


@_migration("0007_chat_replies")
def _chat_replies(db: Database) -> None:
    """For chat models the round also asks each fact's chat question: the reply, and the two
    verdicts `held` now combines (older rows checked the completion only, so theirs is `held`)."""
    db.executescript(
        """
        ALTER TABLE batch_facts ADD COLUMN chat_reply TEXT;
        ALTER TABLE batch_facts ADD COLUMN completion_held INTEGER;
        ALTER TABLE batch_facts ADD COLUMN chat_held INTEGER;
        UPDATE batch_facts SET completion_held = held;
        """
    )


@_migration("0008_fact_questions")
def _fact_questions(db: Database) -> None:
    """What a user would ask in chat about each fact (the round's chat check asks the first);
    facts written before have none."""
    db.executescript("ALTER TABLE facts ADD COLUMN questions TEXT NOT NULL DEFAULT '[]';  -- JSON list of questions")


SCHEMA_VERSION = len(_MIGRATION_NAMES)


def applied_version(db: Database) -> int:
    return len(MIGRATIONS.applied(db))


def unknown_migrations(db: Database) -> list[str]:
    """Migrations in the file that this version does not know: the file is from a newer NSE."""
    return [m.name for m in MIGRATIONS.applied(db) if m.name not in _MIGRATION_NAMES]
