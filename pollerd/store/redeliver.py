"""Making settled deliveries pending again: the part of ``pollerd redeliver`` that writes, done by
the state's writer (with SQLite: the command itself, or the daemon it hands the request to; with
PostgreSQL: the command, beside any daemon)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from pollerd.store.blobs import BlobStore
from pollerd.store.sqlite import queries

if TYPE_CHECKING:
    from pollerd.store.postgres.store import PgStore


def redeliver_in(
    db: sqlite3.Connection, state_dir: Path, event_id: str | None, sink: str | None
) -> tuple[int, str]:
    """The redelivery in a SQLite state: (exit code, what was done)."""
    if event_id is not None:
        sha = queries.event_sha256(db, event_id)
        if sha is None:
            return 1, f"no event {event_id}"
        if not BlobStore(state_dir).path(sha).exists():
            return 1, _gone(event_id)
    return _said(queries.redeliver(db, event_id, sink), event_id)


async def redeliver_in_database(store: PgStore, event_id: str | None, sink: str | None) -> tuple[int, str]:
    """The redelivery in a PostgreSQL state: (exit code, what was done)."""
    from pollerd.store.postgres import queries as pg_queries  # psycopg, only where there is a database

    if event_id is not None:
        sha = await store.run(pg_queries.event_sha256, event_id)
        if sha is None:
            return 1, f"no event {event_id}"
        if not await store.run(pg_queries.has_payload, sha):
            return 1, _gone(event_id)
    return _said(await store.run(pg_queries.redeliver, event_id, sink), event_id)


def _gone(event_id: str) -> str:
    return (
        f"the payload of {event_id} is no longer kept, so it cannot be sent again: a version is "
        "kept for daemon.redeliver_keep after its commit (24 h unless set), while a delivery of "
        "it is pending or dead, and while it is its resource's current version"
    )


def _said(count: int, event_id: str | None) -> tuple[int, str]:
    what = f"of event {event_id}" if event_id else "that were dead"
    if not count:
        return 1, f"nothing to redeliver (no deliveries {what})"
    return 0, f"{count} {'delivery' if count == 1 else 'deliveries'} {what} pending again"
