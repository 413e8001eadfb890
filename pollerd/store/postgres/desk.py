"""The desk's decisions in the PostgreSQL state, the twins of ``sqlite.desk``: any replica (or the
command line) adds one; the replica holding the source applies it."""

from __future__ import annotations

import json
import time
from typing import Any

from psycopg.types.json import Jsonb

from pollerd.desk.book import Decision
from pollerd.store.postgres import queries as pg_queries
from pollerd.store.postgres.queries import OUTBOX_CHANNEL, Connection
from pollerd.store.protocol import StateRefused


async def add_decision(db: Connection, decision: Decision) -> Decision:
    """Keep a new decision (pending); the decision with its id. The replicas are woken."""
    body = {k: v for k, v in decision.to_json().items() if k != "id"} | {"status": "pending"}
    cursor = await db.execute(
        "INSERT INTO pollerd.desk_decisions (source, status, body, created_at)"
        " VALUES (%s, 'pending', %s, %s) RETURNING id",
        (decision.source, Jsonb(body), time.time()),
    )
    row = await cursor.fetchone()
    assert row is not None
    await db.execute("SELECT pg_notify(%s, '')", (OUTBOX_CHANNEL,))
    return Decision.from_json(body | {"id": int(row[0])})


async def decisions(db: Connection, source: str | None, status: str | None = None) -> list[Decision]:
    """The decisions of a source (None: every source), oldest first; only those of ``status``."""
    query, args = "SELECT id, body::text FROM pollerd.desk_decisions WHERE true", list[str]()
    if source is not None:
        query, args = query + " AND source = %s", [*args, source]
    if status is not None:
        query, args = query + " AND status = %s", [*args, status]
    cursor = await db.execute(f"{query} ORDER BY id", args)
    found: list[Any] = await cursor.fetchall()
    return [Decision.from_json(json.loads(body) | {"id": int(id_)}) for id_, body in found]


async def settle_decision(db: Connection, decision: Decision) -> bool:
    """Record what became of a pending decision (refused: no event), in the caller's
    transaction; False when it was settled already (by another replica)."""
    try:
        await pg_queries.settle_decision(db, decision)
    except StateRefused:
        return False
    return True


async def latest_told(db: Connection, source: str, prefix: str) -> dict[str, dict[str, Any]]:
    """The last election event told of each subject starting with ``prefix``, by subject."""
    cursor = await db.execute(
        "SELECT DISTINCT ON (subject) subject, body::text FROM pollerd.election_events"
        " WHERE source = %s AND starts_with(subject, %s) ORDER BY subject, id DESC",
        (source, prefix),
    )
    return {subject: json.loads(body) for subject, body in await cursor.fetchall()}
