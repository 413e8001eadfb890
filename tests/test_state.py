"""The state database: an older schema is brought up to date on open."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from pollerd.store.sqlite.schema import SCHEMA_VERSION, connect

_V1_EVENTS = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL, resource TEXT NOT NULL, sequence INTEGER NOT NULL,
    sha256 TEXT NOT NULL, body TEXT NOT NULL, extension TEXT NOT NULL, created_at REAL NOT NULL);
INSERT INTO meta VALUES ('schema_version', '1');
INSERT INTO events (event_id, source, resource, sequence, sha256, body, extension, created_at)
    VALUES ('e1', 's', 'r', 1, 'abc', '{"size": 1234}', 'json', 0);
"""


def test_a_version_1_database_is_migrated(tmp_path: Path) -> None:
    """Events written before the size column get their size from the event body."""
    path = tmp_path / "pollerd.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(_V1_EVENTS)
    db, _ = connect(path)
    try:
        assert db.execute("SELECT size FROM events").fetchone() == (1234,)
        version = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        assert version == (str(SCHEMA_VERSION),)
    finally:
        db.close()
    reopened, _ = connect(path)  # opening again changes nothing
    reopened.close()
