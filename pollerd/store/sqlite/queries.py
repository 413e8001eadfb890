"""Every query of the state, written once: plain functions on a SQLite connection. The daemon
runs them on the store's thread (``SqliteStore``); the CLI's commands call them directly."""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog

from pollerd.core.election import NUMBER_TYPES
from pollerd.core.masking import MASKED
from pollerd.core.model import Event, Resource, ResourceState
from pollerd.store.rows import (
    DeliveryRow,
    PendingDelivery,
    Told,
    allocated,
    announced,
    election_entry,
    election_rows,
    pending_delivery,
    state_from_json,
    state_to_json,
    status_counts,
)

_log = structlog.get_logger("pollerd.state")
_SAVE_STATE = "INSERT OR REPLACE INTO resources (source, resource, state) VALUES (?, ?, ?)"


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on error."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def load_states(db: sqlite3.Connection, source: str) -> dict[str, ResourceState]:
    """Every resource state of a source, by resource id."""
    rows = db.execute("SELECT resource, state FROM resources WHERE source=? ORDER BY resource", (source,))
    return {resource: state_from_json(state) for resource, state in rows}


def save_states(db: sqlite3.Connection, source: str, states: list[ResourceState]) -> None:
    """Persist resource states in one transaction."""
    rows = [(source, state.resource_id, state_to_json(state)) for state in states]
    with transaction(db):
        db.executemany(_SAVE_STATE, rows)


def record_change(
    db: sqlite3.Connection, source: str, state: ResourceState, event: Event, sinks: list[str]
) -> Event:
    """In one transaction: the resource's new state, the event (its sequence allocated here), and
    one pending delivery per sink; the event as committed."""
    with transaction(db):
        return insert_change(db, source, state, event, sinks)


def insert_change(
    db: sqlite3.Connection, source: str, state: ResourceState, event: Event, sinks: list[str]
) -> Event:
    """``record_change`` inside a transaction the caller holds (several changes in one)."""
    now = time.time()
    event = allocated(source, state, event, next_sequence(db, source, state.resource_id))
    event = announced(event, last_states(db, source, [fact.subject for fact in event.election]))
    db.execute(_SAVE_STATE, (source, state.resource_id, state_to_json(state)))
    db.execute(
        "INSERT INTO events (event_id, source, resource, sequence, sha256, body, extension,"
        " created_at, size, chain_from) VALUES (?,?,?,?,?,?,?,?,?,?)",
        (
            event.event_id,
            source,
            state.resource_id,
            event.sequence,
            event.sha256,
            json.dumps(event.to_json()),
            event.extension,
            now,
            event.size,
            event.chain_from,
        ),
    )
    db.executemany(
        "INSERT INTO deliveries (event_id, sink, status, next_attempt, updated_at)"
        " VALUES (?, ?, 'pending', ?, ?)",
        [(event.event_id, sink, now, now) for sink in sinks],
    )
    db.executemany(
        "INSERT INTO election_events (event_id, version_event_id, source, resource, type, subject,"
        " state, body, created_at) VALUES (?,?,?,?,?,?,?,?,?)",
        election_rows(source, event, now),
    )
    return event


def last_states(db: sqlite3.Connection, source: str, subjects: list[str]) -> dict[str, Told]:
    """The state last announced of each subject and its upstream time (those never announced
    are left out)."""
    found = {}
    for subject in dict.fromkeys(subjects):
        row = db.execute(
            "SELECT state, json_extract(body, '$.at') FROM election_events WHERE source=? AND subject=?"
            " ORDER BY id DESC LIMIT 1",
            (source, subject),
        ).fetchone()
        if row is not None:
            found[subject] = (str(row[0]), row[1])
    return found


def latest_election_events(
    db: sqlite3.Connection, limit: int, source: str, numbers: bool = False
) -> list[dict[str, Any]]:
    """The newest stories of a source (calls, completions, corrections), or with ``numbers`` the
    newest numbers between them, newest first (the status page's panels)."""
    rows = db.execute(
        "SELECT body, source, resource, created_at FROM election_events WHERE source=?"
        " AND (type IN (SELECT value FROM json_each(?))) = ? ORDER BY id DESC LIMIT ?",
        (source, json.dumps(NUMBER_TYPES), numbers, limit),
    )
    return [election_entry(*row) for row in rows]


def next_sequence(db: sqlite3.Connection, source: str, resource: str) -> int:
    """One past the highest sequence the resource's stored state or its events have."""
    row = db.execute(
        "SELECT MAX(COALESCE((SELECT MAX(sequence) FROM events WHERE source=? AND resource=?),"
        " 0), COALESCE((SELECT json_extract(state, '$.sequence') FROM resources"
        " WHERE source=? AND resource=?), 0))",
        (source, resource, source, resource),
    ).fetchone()
    return int(row[0]) + 1


def load_discovery(db: sqlite3.Connection, source: str) -> list[Resource] | None:
    """The last good discovery of a source, if any."""
    row = db.execute("SELECT resources FROM discoveries WHERE source=?", (source,)).fetchone()
    return None if row is None else [Resource.from_json(r) for r in json.loads(row[0])]


def save_discovery(db: sqlite3.Connection, source: str, resources: list[Resource]) -> None:
    """Remember a good discovery, so an API outage or a restart keeps the known URLs."""
    text = json.dumps([r.to_json() for r in resources])
    db.execute("INSERT OR REPLACE INTO discoveries VALUES (?, ?, ?)", (source, text, time.time()))


def pending_deliveries(db: sqlite3.Connection, sink: str, limit: int) -> list[PendingDelivery]:
    """Pending deliveries of a sink in event order (per resource: sequence order)."""
    rows = db.execute(
        "SELECT e.body, e.extension, d.attempts, d.next_attempt, e.created_at FROM deliveries d"
        " JOIN events e ON e.event_id = d.event_id"
        " WHERE d.sink=? AND d.status='pending' ORDER BY e.id LIMIT ?",
        (sink, limit),
    )
    return [pending_delivery(sink, row) for row in rows]


def mark_attempt(
    db: sqlite3.Connection, event_id: str, sink: str, status: str, error: str, next_attempt: float | None
) -> None:
    """An attempt failed: the delivery stays ``pending`` until ``next_attempt``, or is ``dead``."""
    db.execute(
        "UPDATE deliveries SET status=?, attempts=attempts+1, last_error=?,"
        " next_attempt=COALESCE(?, next_attempt), updated_at=? WHERE event_id=? AND sink=?",
        (status, MASKED(error), next_attempt, time.time(), event_id, sink),
    )


def settle(db: sqlite3.Connection, event_ids: list[str], sink: str, status: str, attempted: int) -> None:
    """Close pending deliveries with ``status`` (delivered, superseded) in one transaction;
    ``attempted`` is 1 when this closes an attempt."""
    with transaction(db):
        db.executemany(
            "UPDATE deliveries SET status=?, attempts=attempts+?, last_error=NULL,"
            " updated_at=? WHERE event_id=? AND sink=? AND status='pending'",
            [(status, attempted, time.time(), event_id, sink) for event_id in event_ids],
        )


def outbox_bytes(db: sqlite3.Connection, sink: str) -> int:
    """Payload bytes of the sink's pending deliveries."""
    row = db.execute(
        "SELECT COALESCE(SUM(e.size), 0) FROM deliveries d"
        " JOIN events e ON e.event_id = d.event_id WHERE d.sink=? AND d.status='pending'",
        (sink,),
    ).fetchone()
    return int(row[0])


def delivery_counts(db: sqlite3.Connection, sink: str) -> dict[str, int]:
    """Deliveries of a sink by status (every status, zero included)."""
    rows = db.execute("SELECT status, COUNT(*) FROM deliveries WHERE sink=? GROUP BY status", (sink,))
    return status_counts(rows.fetchall())


def outbox_depth(db: sqlite3.Connection, sink: str) -> int:
    """How many deliveries the sink has pending."""
    row = db.execute("SELECT COUNT(*) FROM deliveries WHERE sink=? AND status='pending'", (sink,)).fetchone()
    return int(row[0])


def list_deliveries(
    db: sqlite3.Connection, sink: str, statuses: tuple[str, ...], limit: int
) -> list[DeliveryRow]:
    """Deliveries of a sink with one of ``statuses``, oldest event first."""
    marks = ",".join("?" * len(statuses))  # placeholders only: the values are bound
    sql = (
        "SELECT d.event_id, e.source, e.resource, e.sequence, d.status, d.attempts,"  # noqa: S608
        " d.last_error, d.updated_at FROM deliveries d JOIN events e ON e.event_id = d.event_id"
        f" WHERE d.sink=? AND d.status IN ({marks}) ORDER BY e.id LIMIT ?"
    )
    return [DeliveryRow(*row) for row in db.execute(sql, (sink, *statuses, limit))]


def event_sha256(db: sqlite3.Connection, event_id: str) -> str | None:
    """The payload hash of an event."""
    row = db.execute("SELECT sha256 FROM events WHERE event_id=?", (event_id,)).fetchone()
    return None if row is None else str(row[0])


def redeliver(db: sqlite3.Connection, event_id: str | None, sink: str | None) -> int:
    """Make deliveries pending again: one event's (any status but pending), or every dead one;
    ``sink`` limits it to one sink. How many."""
    query = (
        "UPDATE deliveries SET status='pending', attempts=0, last_error=NULL,"
        " next_attempt=?, updated_at=? WHERE status != 'pending'"
    )
    args: list[Any] = [time.time(), time.time()]
    if event_id is None:
        query += " AND status='dead'"
    else:
        query += " AND event_id=?"
        args.append(event_id)
    if sink is not None:
        query += " AND sink=?"
        args.append(sink)
    with transaction(db):
        return db.execute(query, args).rowcount


def blob_in_use(db: sqlite3.Connection, sha256: str, kept_after: float = math.inf) -> bool:
    """Whether a payload is still needed: by a pending or dead delivery (it may be redelivered),
    as a resource's current version, or as a version committed after ``kept_after`` (kept for
    redelivery); itself or as a link of such a version's chain (an AP version kept as a delta
    needs every payload back to its checkpoint)."""
    recent = db.execute(
        "SELECT 1 FROM events WHERE sha256=? AND created_at >= ? LIMIT 1", (sha256, kept_after)
    ).fetchone()
    if recent:
        return True
    pending = db.execute(
        "SELECT 1 FROM deliveries d JOIN events e ON e.event_id = d.event_id"
        " WHERE e.sha256=? AND d.status IN ('pending', 'dead') LIMIT 1",
        (sha256,),
    ).fetchone()
    if pending:
        return True
    current = db.execute(
        "SELECT 1 FROM resources WHERE json_extract(state, '$.sha256')=? LIMIT 1", (sha256,)
    ).fetchone()
    return current is not None or db.execute(_CHAIN_IN_USE, (sha256, kept_after)).fetchone() is not None


_CHAIN_IN_USE = """
SELECT 1 FROM events link JOIN events later
  ON later.source = link.source AND later.resource = link.resource
  AND later.sequence > link.sequence AND later.chain_from <= link.sequence
WHERE link.sha256 = ?
  AND (later.created_at >= ?
       OR EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = later.event_id
               AND d.status IN ('pending', 'dead'))
       OR EXISTS (SELECT 1 FROM resources r WHERE r.source = later.source
                  AND r.resource = later.resource AND json_extract(r.state, '$.sha256') = later.sha256))
LIMIT 1
"""


def note_source(db: sqlite3.Connection, source: str, what: str, text: str | None) -> None:
    """Keep what ``status`` tells of a source (``what``: ``stopped``, why it stopped for good;
    ``discovery``, why its API could not be asked); ``None`` clears it."""
    if text is None:
        db.execute("DELETE FROM meta WHERE key=?", (f"{what}:{source}",))
    else:
        db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (f"{what}:{source}", text))


def source_note(db: sqlite3.Connection, source: str, what: str) -> str | None:
    """What ``note_source`` kept of a source, if anything."""
    row = db.execute("SELECT value FROM meta WHERE key=?", (f"{what}:{source}",)).fetchone()
    return None if row is None else str(row[0])


def committed_between(db: sqlite3.Connection, after: float, before: float) -> list[str]:
    """The payloads of the versions committed in [after, before) (the retention's sweep)."""
    rows = db.execute(
        "SELECT DISTINCT sha256 FROM events WHERE created_at >= ? AND created_at < ?", (after, before)
    )
    return [str(row[0]) for row in rows]
