"""Moving a SQLite state into PostgreSQL, so a running single instance can become replicas without
announcing anything again: resource states, discoveries, events (their ids and sequences as they
are), every delivery with its status, the stops, and the payloads still needed, in one transaction.
A database that already holds pollerd events is refused (two histories are not merged)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from pollerd.store.blobs import BlobStore
from pollerd.store.postgres import queries as pg_queries
from pollerd.store.postgres.queries import Connection
from pollerd.store.postgres.store import PgStore

_TABLES = {
    "resources": "SELECT source, resource, state FROM resources",
    "discoveries": "SELECT source, resources, discovered_at FROM discoveries",
    "events": "SELECT event_id, source, resource, sequence, sha256, body, extension, created_at, size,"
    " chain_from FROM events ORDER BY id",
    "deliveries": "SELECT event_id, sink, status, attempts, next_attempt, last_error, updated_at"
    " FROM deliveries",
    "meta": "SELECT key, value FROM meta WHERE key LIKE 'stopped:%'",
}
_INSERTS = {
    "resources": "INSERT INTO pollerd.resources VALUES (%s, %s, %s::jsonb)",
    "discoveries": "INSERT INTO pollerd.discoveries VALUES (%s, %s::jsonb, %s)",
    "events": "INSERT INTO pollerd.events (event_id, source, resource, sequence, sha256, body, extension,"
    " created_at, size, chain_from) VALUES (%s, %s, %s, %s, %s, %s::jsonb, %s, %s, %s, %s)",
    "deliveries": "INSERT INTO pollerd.deliveries VALUES (%s, %s, %s, %s, %s, %s, %s)",
    "meta": "INSERT INTO pollerd.meta VALUES (%s, %s)",
}


class MigrationRefused(Exception):
    """The move cannot be made (the database already holds a pollerd history)."""


@dataclass(frozen=True)
class Moved:
    """What was copied."""

    rows: dict[str, int]
    payloads: int


def read_state(db: sqlite3.Connection) -> dict[str, list[tuple[Any, ...]]]:
    """Every row that moves, table by table."""
    return {table: db.execute(query).fetchall() for table, query in _TABLES.items()}


async def move(rows: dict[str, list[tuple[Any, ...]]], blobs: BlobStore, store: PgStore) -> Moved:
    """Copy the rows and the payloads they still need into the (migrated, empty) database."""
    needed = {str(row[4]) for row in rows["events"]} | {
        sha for sha in await asyncio.to_thread(_current_hashes, rows["resources"]) if sha
    }
    kept = [sha for sha in sorted(needed) if await asyncio.to_thread(blobs.path(sha).exists)]

    async def copy(db: Connection) -> None:
        async with db.transaction():
            cursor = await db.execute("SELECT EXISTS (SELECT 1 FROM pollerd.events)")
            row = await cursor.fetchone()
            if row and row[0]:
                raise MigrationRefused("the database already holds pollerd events; nothing was copied")
            for table, insert in _INSERTS.items():
                async with db.cursor() as many:
                    await many.executemany(insert, rows[table])
            for sha in kept:
                await pg_queries.store_payload(db, sha, blobs.path(sha))

    await store.run(copy)
    return Moved({table: len(found) for table, found in rows.items()}, len(kept))


def _current_hashes(resources: list[tuple[Any, ...]]) -> list[str | None]:
    return [json.loads(state).get("sha256") for _, _, state in resources]
