"""The SQLite state database on disk: its file, its schema, migrations, and opening it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

SCHEMA_VERSION = 5
STATE_FILE = "pollerd.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS resources (
    source TEXT NOT NULL, resource TEXT NOT NULL, state TEXT NOT NULL,
    PRIMARY KEY (source, resource));
CREATE TABLE IF NOT EXISTS discoveries (
    source TEXT PRIMARY KEY, resources TEXT NOT NULL, discovered_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL, resource TEXT NOT NULL, sequence INTEGER NOT NULL,
    sha256 TEXT NOT NULL, body TEXT NOT NULL, extension TEXT NOT NULL, created_at REAL NOT NULL,
    size INTEGER NOT NULL DEFAULT 0, chain_from INTEGER);
CREATE TABLE IF NOT EXISTS deliveries (
    event_id TEXT NOT NULL, sink TEXT NOT NULL, status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, next_attempt REAL NOT NULL, last_error TEXT,
    updated_at REAL NOT NULL, PRIMARY KEY (event_id, sink));
CREATE INDEX IF NOT EXISTS deliveries_by_sink ON deliveries (sink, status);
CREATE TABLE IF NOT EXISTS election_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE, version_event_id TEXT NOT NULL,
    source TEXT NOT NULL, resource TEXT NOT NULL, type TEXT NOT NULL, subject TEXT NOT NULL,
    state TEXT NOT NULL, body TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS desk_decisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT, source TEXT NOT NULL, status TEXT NOT NULL,
    body TEXT NOT NULL, created_at REAL NOT NULL);
"""
# Each step brings a database written by the version before up to date.
_MIGRATIONS = {
    2: [
        "ALTER TABLE events ADD COLUMN size INTEGER NOT NULL DEFAULT 0",
        "UPDATE events SET size = COALESCE(json_extract(body, '$.size'), 0)",
    ],
    3: [],  # election_events: created by the schema script, as every table that only adds
    # an AP version kept as its change names the checkpoint it builds on
    4: ["ALTER TABLE events ADD COLUMN chain_from INTEGER"],
    5: [],  # desk_decisions: the desk's decisions, made by the schema script
}
_INDEXES = """
CREATE INDEX IF NOT EXISTS events_by_sha256 ON events (sha256);
CREATE INDEX IF NOT EXISTS events_by_resource ON events (source, resource, sequence);
CREATE INDEX IF NOT EXISTS election_events_by_subject ON election_events (source, subject, id);
CREATE INDEX IF NOT EXISTS desk_decisions_by_source ON desk_decisions (source, status, id);
CREATE INDEX IF NOT EXISTS resources_by_sha256 ON resources (json_extract(state, '$.sha256'));
"""


class StateCorrupt(Exception):
    """The state database fails SQLite's own check."""


def state_path(state_dir: Path) -> Path:
    """Where a state directory keeps its database."""
    return state_dir / STATE_FILE


def connect(path: Path) -> tuple[sqlite3.Connection, bool]:
    """Open the database for writing, created or migrated as needed; and whether it was made
    new (there was none, or an empty file). StateCorrupt when SQLite's check fails."""
    path.parent.mkdir(parents=True, exist_ok=True)
    created = not path.exists() or path.stat().st_size == 0
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        _check(db, path)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA busy_timeout=5000")
        _migrate(db, path)
    except BaseException:
        db.close()
        raise
    return db, created


def connect_readonly(path: Path) -> sqlite3.Connection:
    """Open for reading only (the CLI's reports): never creates, migrates or writes;
    FileNotFoundError when there is no state yet."""
    if not path.exists():
        raise FileNotFoundError(path)
    db = sqlite3.connect(
        f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
    )
    db.execute("PRAGMA busy_timeout=5000")
    return db


def _check(db: sqlite3.Connection, path: Path) -> None:
    """``PRAGMA quick_check`` must find nothing wrong; a file that is no database is wrong too."""
    try:
        rows = [str(row[0]) for row in db.execute("PRAGMA quick_check")]
    except sqlite3.DatabaseError as exc:
        rows = [str(exc)]
    if rows != ["ok"]:
        raise StateCorrupt(
            f"{path} is damaged ({'; '.join(rows[:3])}); restore it from a backup, "
            "or move it aside to start afresh (every resource is then "
            "announced again as a first version)"
        )


def _migrate(db: sqlite3.Connection, path: Path) -> None:
    """Create or bring the schema up to date in one transaction: a crash part-way (``kill -9``
    at start) leaves the database as it was, never tables without their schema version."""
    db.execute("BEGIN IMMEDIATE")
    try:
        fresh = db.execute("SELECT name FROM sqlite_master WHERE name='events'").fetchone() is None
        _run(db, _SCHEMA)
        row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        version = SCHEMA_VERSION if fresh else int(row[0]) if row else 1
        if version > SCHEMA_VERSION:
            raise RuntimeError(f"{path} was written by a newer pollerd (schema {version})")
        for step in range(version + 1, SCHEMA_VERSION + 1):
            for statement in _MIGRATIONS[step]:
                db.execute(statement)
        db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        _run(db, _INDEXES)
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _run(db: sqlite3.Connection, script: str) -> None:
    """The statements of a script, inside the caller's transaction (``executescript`` commits)."""
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)
