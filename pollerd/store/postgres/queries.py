"""Every query of the state on PostgreSQL, written once: async functions on a connection, the
twins of ``queries`` (SQLite) with the same meaning. A resource's sequence is allocated under a
transaction-scoped advisory lock of that resource, and ``(source, resource, sequence)`` is unique:
two writers can never commit two different events for one sequence."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Any

import structlog
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from pollerd.core.election import NUMBER_TYPES
from pollerd.core.masking import MASKED
from pollerd.core.model import Event, Resource, ResourceState
from pollerd.desk.book import Decision
from pollerd.store import rows
from pollerd.store.protocol import StateRefused
from pollerd.store.rows import DeliveryRow, PendingDelivery
from pollerd.versions.stored import DELTA_MARK, is_delta

Connection = AsyncConnection[tuple[Any, ...]]
_log = structlog.get_logger("pollerd.state")
OUTBOX_CHANNEL = "pollerd_outbox"  # notified when a change enters the outbox, on any replica
_SAVE_STATE = (
    "INSERT INTO pollerd.resources (source, resource, state) VALUES (%s, %s, %s::jsonb)"
    " ON CONFLICT (source, resource) DO UPDATE SET state = excluded.state"
)


async def load_states(db: Connection, source: str) -> dict[str, ResourceState]:
    """Every resource state of a source, by resource id."""
    cursor = await db.execute(
        "SELECT resource, state::text FROM pollerd.resources WHERE source = %s ORDER BY resource", (source,)
    )
    return {resource: rows.state_from_json(state) async for resource, state in cursor}


async def save_states(db: Connection, source: str, states: list[ResourceState]) -> None:
    """Persist resource states in one transaction."""
    async with db.transaction(), db.cursor() as cursor:
        await cursor.executemany(
            _SAVE_STATE, [(source, s.resource_id, rows.state_to_json(s)) for s in states]
        )


async def record_change(
    db: Connection,
    source: str,
    state: ResourceState,
    event: Event,
    sinks: list[str],
    payload: Path,
    settles: Decision | None = None,
) -> Event:
    """In one transaction: the payload (unless stored already), the resource's new state, the
    event (its sequence allocated here), one pending delivery per sink, and the desk's decision
    it settles; the event as committed. The payload's lock is held, so no release removes it
    meanwhile."""
    now = time.time()
    async with db.transaction():
        await store_payload(db, event.sha256, payload)
        await db.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
            (f"{source}/{len(source)}/{state.resource_id}",),
        )
        event = rows.allocated(source, state, event, await next_sequence(db, source, state.resource_id))
        if event.election:  # the source's facts are judged one version at a time
            await db.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 1))", (source,))
            event = rows.announced(event, await last_states(db, source, [f.subject for f in event.election]))
        await db.execute(_SAVE_STATE, (source, state.resource_id, rows.state_to_json(state)))
        await db.execute(
            "INSERT INTO pollerd.events (event_id, source, resource, sequence, sha256, body, extension,"
            " created_at, size, chain_from) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                event.event_id,
                source,
                state.resource_id,
                event.sequence,
                event.sha256,
                Jsonb(event.to_json()),
                event.extension,
                now,
                event.size,
                event.chain_from,
            ),
        )
        async with db.cursor() as cursor:
            await cursor.executemany(
                "INSERT INTO pollerd.deliveries (event_id, sink, status, next_attempt, updated_at)"
                " VALUES (%s, %s, 'pending', %s, %s)",
                [(event.event_id, sink, now, now) for sink in sinks],
            )
            await cursor.executemany(
                "INSERT INTO pollerd.election_events (event_id, version_event_id, source, resource, type,"
                " subject, state, body, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s)",
                rows.election_rows(source, event, now),
            )
        if settles is not None:
            await settle_decision(db, dataclasses.replace(settles, event_id=event.event_id))
        await db.execute("SELECT pg_notify(%s, '')", (OUTBOX_CHANNEL,))  # sent at commit
    return event


async def settle_decision(db: Connection, decision: Decision) -> None:
    """What became of a desk decision (in the caller's transaction); StateRefused when another
    replica settled it already."""
    body = {k: v for k, v in decision.to_json().items() if k != "id"}
    cursor = await db.execute(
        "UPDATE pollerd.desk_decisions SET status = %s, body = %s WHERE id = %s AND status = 'pending'"
        " RETURNING id",  # a result read: pipelined statements have no row count until then
        (decision.status, Jsonb(body), decision.id),
    )
    if await cursor.fetchone() is None:
        raise StateRefused(f"decision {decision.id} was settled by another writer")


async def last_states(db: Connection, source: str, subjects: list[str]) -> dict[str, rows.Told]:
    """The state last announced of each subject and its upstream time (those never announced
    are left out)."""
    cursor = await db.execute(
        "SELECT DISTINCT ON (subject) subject, state, body->>'at' FROM pollerd.election_events"
        " WHERE source = %s AND subject = ANY(%s) ORDER BY subject, id DESC",
        (source, list(set(subjects))),
    )
    return {str(subject): (str(state), at) for subject, state, at in await cursor.fetchall()}


async def latest_election_events(
    db: Connection, limit: int, source: str, numbers: bool = False
) -> list[dict[str, Any]]:
    """The newest stories of a source, or with ``numbers`` the newest numbers between them,
    newest first (the status page's panels)."""
    cursor = await db.execute(
        "SELECT body, source, resource, created_at FROM pollerd.election_events WHERE source = %s"
        " AND (type = ANY(%s)) = %s ORDER BY id DESC LIMIT %s",
        (source, list(NUMBER_TYPES), numbers, limit),
    )
    return [rows.election_entry(*row) for row in await cursor.fetchall()]


async def next_sequence(db: Connection, source: str, resource: str) -> int:
    """One past the highest sequence the resource's stored state or its events have."""
    cursor = await db.execute(
        "SELECT GREATEST("
        " COALESCE((SELECT MAX(sequence) FROM pollerd.events WHERE source = %s AND resource = %s), 0),"
        " COALESCE((SELECT (state->>'sequence')::bigint FROM pollerd.resources"
        " WHERE source = %s AND resource = %s), 0))",
        (source, resource, source, resource),
    )
    row = await cursor.fetchone()
    assert row is not None
    return int(row[0]) + 1


async def load_discovery(db: Connection, source: str) -> list[Resource] | None:
    """The last good discovery of a source, if any."""
    cursor = await db.execute("SELECT resources::text FROM pollerd.discoveries WHERE source = %s", (source,))
    row = await cursor.fetchone()
    return None if row is None else [Resource.from_json(r) for r in json.loads(row[0])]


async def save_discovery(db: Connection, source: str, resources: list[Resource]) -> None:
    """Remember a good discovery."""
    await db.execute(
        "INSERT INTO pollerd.discoveries VALUES (%s, %s, %s) ON CONFLICT (source) DO UPDATE"
        " SET resources = excluded.resources, discovered_at = excluded.discovered_at",
        (source, Jsonb([r.to_json() for r in resources]), time.time()),
    )


async def pending_deliveries(db: Connection, sink: str, limit: int) -> list[PendingDelivery]:
    """Pending deliveries of a sink in event order (per resource: sequence order)."""
    cursor = await db.execute(
        "SELECT e.body::text, e.extension, d.attempts, d.next_attempt, e.created_at"
        " FROM pollerd.deliveries d JOIN pollerd.events e ON e.event_id = d.event_id"
        " WHERE d.sink = %s AND d.status = 'pending' ORDER BY e.id LIMIT %s",
        (sink, limit),
    )
    return [rows.pending_delivery(sink, row) async for row in cursor]


async def mark_attempt(
    db: Connection, event_id: str, sink: str, status: str, error: str, next_attempt: float | None
) -> None:
    """An attempt failed: the delivery stays ``pending`` until ``next_attempt``, or is ``dead``."""
    await db.execute(
        "UPDATE pollerd.deliveries SET status = %s, attempts = attempts + 1, last_error = %s,"
        " next_attempt = COALESCE(%s, next_attempt), updated_at = %s WHERE event_id = %s AND sink = %s",
        (status, MASKED(error), next_attempt, time.time(), event_id, sink),
    )


async def settle(db: Connection, event_ids: list[str], sink: str, status: str, attempted: int) -> None:
    """Close pending deliveries with ``status`` in one statement."""
    await db.execute(
        "UPDATE pollerd.deliveries SET status = %s, attempts = attempts + %s, last_error = NULL,"
        " updated_at = %s WHERE event_id = ANY(%s) AND sink = %s AND status = 'pending'",
        (status, attempted, time.time(), event_ids, sink),
    )


async def outbox_bytes(db: Connection, sink: str) -> int:
    """Payload bytes of the sink's pending deliveries."""
    cursor = await db.execute(
        "SELECT COALESCE(SUM(e.size), 0) FROM pollerd.deliveries d"
        " JOIN pollerd.events e ON e.event_id = d.event_id WHERE d.sink = %s AND d.status = 'pending'",
        (sink,),
    )
    return int((await cursor.fetchone() or (0,))[0])


async def delivery_counts(db: Connection, sink: str) -> dict[str, int]:
    """Deliveries of a sink by status (every status, zero included)."""
    cursor = await db.execute(
        "SELECT status, COUNT(*) FROM pollerd.deliveries WHERE sink = %s GROUP BY status", (sink,)
    )
    return rows.status_counts(await cursor.fetchall())


async def outbox_depth(db: Connection, sink: str) -> int:
    """How many deliveries the sink has pending."""
    return (await delivery_counts(db, sink))["pending"]


async def list_deliveries(
    db: Connection, sink: str, statuses: tuple[str, ...], limit: int
) -> list[DeliveryRow]:
    """Deliveries of a sink with one of ``statuses``, oldest event first."""
    cursor = await db.execute(
        "SELECT d.event_id, e.source, e.resource, e.sequence, d.status, d.attempts, d.last_error,"
        " d.updated_at FROM pollerd.deliveries d JOIN pollerd.events e ON e.event_id = d.event_id"
        " WHERE d.sink = %s AND d.status = ANY(%s) ORDER BY e.id LIMIT %s",
        (sink, list(statuses), limit),
    )
    return [DeliveryRow(*row) async for row in cursor]


async def event_sha256(db: Connection, event_id: str) -> str | None:
    """The payload hash of an event."""
    cursor = await db.execute("SELECT sha256 FROM pollerd.events WHERE event_id = %s", (event_id,))
    row = await cursor.fetchone()
    return None if row is None else str(row[0])


async def redeliver(db: Connection, event_id: str | None, sink: str | None) -> int:
    """Make deliveries pending again: one event's (any status but pending), or every dead one;
    ``sink`` limits it to one sink. How many."""
    cursor = await db.execute(
        "UPDATE pollerd.deliveries SET status = 'pending', attempts = 0, last_error = NULL,"
        " next_attempt = %(now)s, updated_at = %(now)s WHERE status != 'pending'"
        " AND (CASE WHEN %(event)s::text IS NULL THEN status = 'dead' ELSE event_id = %(event)s END)"
        " AND (%(sink)s::text IS NULL OR sink = %(sink)s)",
        {"now": time.time(), "event": event_id, "sink": sink},
    )
    return cursor.rowcount


async def blob_in_use(db: Connection, sha256: str, kept_after: float = math.inf) -> bool:
    """Whether a payload is still needed (see the SQLite store's ``blob_in_use``)."""
    cursor = await db.execute(
        "SELECT EXISTS (SELECT 1 FROM pollerd.events WHERE sha256 = %s AND created_at >= %s)"
        " OR EXISTS (SELECT 1 FROM pollerd.deliveries d JOIN pollerd.events e"
        " ON e.event_id = d.event_id WHERE e.sha256 = %s AND d.status IN ('pending', 'dead'))"
        " OR EXISTS (SELECT 1 FROM pollerd.resources WHERE state->>'sha256' = %s)"
        " OR EXISTS (SELECT 1 FROM pollerd.events link JOIN pollerd.events later"
        " ON later.source = link.source AND later.resource = link.resource"
        " AND later.sequence > link.sequence AND later.chain_from <= link.sequence"
        " WHERE link.sha256 = %s AND (later.created_at >= %s OR EXISTS (SELECT 1 FROM pollerd.deliveries d"
        " WHERE d.event_id = later.event_id AND d.status IN ('pending', 'dead'))"
        " OR EXISTS (SELECT 1 FROM pollerd.resources r WHERE r.source = later.source"
        " AND r.resource = later.resource AND r.state->>'sha256' = later.sha256)))",
        (sha256, kept_after, sha256, sha256, sha256, kept_after),
    )
    row = await cursor.fetchone()
    return bool(row and row[0])


async def committed_between(db: Connection, after: float, before: float) -> list[str]:
    """The payloads of the versions committed in [after, before) (the retention's sweep)."""
    cursor = await db.execute(
        "SELECT DISTINCT sha256 FROM pollerd.events WHERE created_at >= %s AND created_at < %s",
        (after, before),
    )
    return [str(row[0]) for row in await cursor.fetchall()]


async def note_source(db: Connection, source: str, what: str, text: str | None) -> None:
    """Keep what ``status`` tells of a source (see the SQLite store's); ``None`` clears it."""
    if text is None:
        await db.execute("DELETE FROM pollerd.meta WHERE key = %s", (f"{what}:{source}",))
    else:
        await _put_meta(db, f"{what}:{source}", text)


async def source_note(db: Connection, source: str, what: str) -> str | None:
    """What ``note_source`` kept of a source, if anything."""
    cursor = await db.execute("SELECT value FROM pollerd.meta WHERE key = %s", (f"{what}:{source}",))
    row = await cursor.fetchone()
    return None if row is None else str(row[0])


CHUNK = 1024 * 1024  # payload bytes per row: memory holds one chunk, never a whole body


async def store_payload(db: Connection, sha256: str, path: Path) -> None:
    """Store a file's bytes under its hash, a chunk per row, unless they are stored already (in
    the caller's transaction, under the payload's lock). A version that comes back whole where it
    was kept as a delta replaces the delta: its chain may be let go meanwhile."""
    await db.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 1))", (sha256,))
    cursor = await db.execute(
        "SELECT substring(chunk from 1 for %s) FROM pollerd.payloads WHERE sha256 = %s AND part = 0",
        (len(DELTA_MARK), sha256),
    )
    row = await cursor.fetchone()
    if row is not None:
        if bytes(row[0]) != DELTA_MARK or await asyncio.to_thread(is_delta, path):
            return
        await db.execute("DELETE FROM pollerd.payloads WHERE sha256 = %s", (sha256,))
    file = await asyncio.to_thread(path.open, "rb")
    try:
        part = 0
        while (chunk := await asyncio.to_thread(file.read, CHUNK)) or part == 0:
            await db.execute(
                "INSERT INTO pollerd.payloads (sha256, part, chunk) VALUES (%s, %s, %s)",
                (sha256, part, chunk),
            )
            part += 1
            if not chunk:  # an empty payload is one empty chunk: stored, not missing
                break
    finally:
        await asyncio.to_thread(file.close)


async def load_payload(db: Connection, sha256: str, path: Path) -> bool:
    """Write a stored payload into ``path``, chunk by chunk; False if there is none."""
    found = False
    file = await asyncio.to_thread(path.open, "wb")
    try:
        async with db.transaction(), db.cursor(name="payload") as cursor:  # server-side: streamed
            await cursor.execute(
                "SELECT chunk FROM pollerd.payloads WHERE sha256 = %s ORDER BY part", (sha256,)
            )
            async for (chunk,) in cursor:
                found = True
                await asyncio.to_thread(file.write, chunk)
    finally:
        await asyncio.to_thread(file.close)
    return found


async def has_payload(db: Connection, sha256: str) -> bool:
    """Whether a payload is stored."""
    cursor = await db.execute("SELECT 1 FROM pollerd.payloads WHERE sha256 = %s AND part = 0", (sha256,))
    return await cursor.fetchone() is not None


async def delete_payload_unless_used(db: Connection, sha256: str, kept_after: float = math.inf) -> bool:
    """Remove a payload no pending or dead delivery and no current version needs (checked in the
    same transaction, under the payload's lock); whether it was removed."""
    async with db.transaction():
        await db.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 1))", (sha256,))
        if await blob_in_use(db, sha256, kept_after):
            return False
        await db.execute("DELETE FROM pollerd.payloads WHERE sha256 = %s", (sha256,))
        return True


async def _put_meta(db: Connection, key: str, value: str) -> None:
    await db.execute(
        "INSERT INTO pollerd.meta VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, value),
    )
