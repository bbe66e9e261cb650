"""The project file: its tables and settings, opening old and foreign files, migrations."""

import sqlite3

import pytest

from nse_engine.errors import ProjectError
from nse_engine.store import Project
from nse_engine.store.project import LOG_FILE
from nse_engine.store.schema import SCHEMA_VERSION

# The first schema as it shipped (migration 0001_initial), written out by hand so that a
# change to the migration code cannot silently change what an "old file" looks like.
V1_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE facts (
    id INTEGER PRIMARY KEY, subject TEXT NOT NULL, prompt TEXT NOT NULL, target_new TEXT NOT NULL,
    target_true TEXT, paraphrases TEXT NOT NULL DEFAULT '[]', neighborhood TEXT NOT NULL DEFAULT '[]',
    relation TEXT, source_file TEXT, source_line INTEGER, created_at TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'applied', 'failed', 'undone')),
    batch_id INTEGER REFERENCES batches(id), reason TEXT
);
CREATE TABLE state_files (
    id INTEGER PRIMARY KEY, file_name TEXT NOT NULL UNIQUE, sha256 TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('batch', 'undo')), batch_id INTEGER NOT NULL REFERENCES batches(id),
    created_at TEXT NOT NULL
);
CREATE TABLE batches (
    id INTEGER PRIMARY KEY, method TEXT NOT NULL, hparams TEXT NOT NULL, started_at TEXT NOT NULL,
    finished_at TEXT NOT NULL, duration_s REAL NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('applied', 'partial', 'failed')),
    state_id INTEGER REFERENCES state_files(id), undone_at TEXT, undo_state_id INTEGER REFERENCES state_files(id)
);
CREATE TABLE batch_facts (
    batch_id INTEGER NOT NULL REFERENCES batches(id), fact_id INTEGER NOT NULL REFERENCES facts(id),
    applied INTEGER NOT NULL, reason TEXT, distance_before REAL, distance_after REAL, PRIMARY KEY (batch_id, fact_id)
);
CREATE TABLE evaluations (
    batch_id INTEGER NOT NULL REFERENCES batches(id), fact_id INTEGER NOT NULL REFERENCES facts(id),
    retained INTEGER NOT NULL, prob_new REAL, prob_true REAL, PRIMARY KEY (batch_id, fact_id)
);
CREATE TABLE chats (
    id INTEGER PRIMARY KEY, prompt TEXT NOT NULL, answer TEXT NOT NULL, batch_id INTEGER REFERENCES batches(id),
    created_at TEXT NOT NULL
);
CREATE TABLE _sqlite_migrations (id INTEGER PRIMARY KEY, migration_set TEXT, name TEXT, applied_at TEXT);
CREATE UNIQUE INDEX idx_migrations ON _sqlite_migrations (migration_set, name);
INSERT INTO _sqlite_migrations (migration_set, name, applied_at) VALUES ('nse_project', '0001_initial', '2026-01-01');
INSERT INTO meta VALUES ('created_at', '2026-01-01T00:00:00+00:00'), ('base_model_source', 'default'),
                        ('base_model_fingerprint', 'abc123');
INSERT INTO facts (id, subject, prompt, target_new, target_true, created_at, status)
    VALUES (3, 'France', 'The capital of {} is', 'Rome', 'Paris', '2026-01-01', 'queued'),
           (7, 'Spain', 'The capital of {} is', 'Lisbon', 'Madrid', '2026-01-01', 'queued');
"""


def _write_v1_project(folder):
    folder.mkdir()
    conn = sqlite3.connect(folder / LOG_FILE)
    conn.executescript(V1_SCHEMA)
    conn.close()


def test_new_project_has_every_table_wal_and_foreign_keys(tmp_path):
    with Project.create(tmp_path / "p", "default", "fp") as project:
        db = project._db
        assert {"meta", "facts", "batches", "batch_facts", "state_files", "evaluations", "chats"} <= set(db.table_names())
        assert db.journal_mode == "wal"
        assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert project.meta.schema_version == SCHEMA_VERSION
        assert (project.meta.base_model_source, project.meta.base_model_fingerprint) == ("default", "fp")
        assert project.meta.created_at
        with pytest.raises(sqlite3.IntegrityError):
            db.execute("INSERT INTO evaluations (batch_id, fact_id, retained) VALUES (99, 99, 1)")


def test_v1_file_is_migrated_and_keeps_its_data(tmp_path):
    folder = tmp_path / "old"
    _write_v1_project(folder)

    with Project.open(folder) as project:
        assert project.meta.schema_version == SCHEMA_VERSION
        assert [r.fact_id for r in project.queue.queued_facts()] == [3, 7]
        assert [f.position for f in project.queries.facts()] == [3, 7]
        assert project.meta.base_model_fingerprint == "abc123"
        project.queue.reorder([7, 3])
        assert [r.subject for r in project.queue.queued_facts()] == ["Spain", "France"]

    with Project.open(folder) as project:  # a second open finds nothing to migrate
        assert [r.subject for r in project.queue.queued_facts()] == ["Spain", "France"]


def test_file_from_a_newer_version_is_refused(tmp_path):
    folder = tmp_path / "p"
    Project.create(folder).close()
    conn = sqlite3.connect(folder / LOG_FILE)
    conn.execute("INSERT INTO _sqlite_migrations (migration_set, name, applied_at) VALUES ('nse_project', '9999_future', 'x')")
    conn.commit()
    conn.close()
    with pytest.raises(ProjectError, match="newer NSE Studio"):
        Project.open(folder)


@pytest.mark.parametrize("content", [b"this is not a database at all" * 100, b""])
def test_a_log_file_that_is_not_sqlite_is_refused(tmp_path, content):
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / LOG_FILE).write_bytes(content)
    with pytest.raises(ProjectError):
        Project.open(folder)


def test_other_sqlite_files_and_missing_projects_are_refused(tmp_path):
    folder = tmp_path / "p"
    folder.mkdir()
    conn = sqlite3.connect(folder / LOG_FILE)
    conn.execute("CREATE TABLE notes (x)")
    conn.close()
    with pytest.raises(ProjectError, match="not an NSE Studio project"):
        Project.open(folder)
    with pytest.raises(ProjectError, match="not a project folder"):
        Project.open(tmp_path / "nowhere")
    with pytest.raises(ProjectError, match="already holds a project"):
        Project.create(folder)
