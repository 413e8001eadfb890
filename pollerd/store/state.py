"""Durable state: resource validators and hashes, last good discovery, and the delivery outbox.

``StateStore`` is the interface the poll cycle and the delivery loop use; ``SqliteStore`` is the
embedded default. Every SQLite call runs on one dedicated thread, so the event loop never waits on
the disk and the connection is never shared between threads.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import json
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import structlog

from pollerd.core.masking import MASKED
from pollerd.core.model import Event, Resource, ResourceState, Strategy, Validators

SCHEMA_VERSION = 2
STATE_FILE = "pollerd.sqlite3"
_T = TypeVar("_T")
_log = structlog.get_logger("pollerd.state")

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
    size INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS deliveries (
    event_id TEXT NOT NULL, sink TEXT NOT NULL, status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, next_attempt REAL NOT NULL, last_error TEXT,
    updated_at REAL NOT NULL, PRIMARY KEY (event_id, sink));
CREATE INDEX IF NOT EXISTS deliveries_by_sink ON deliveries (sink, status);
"""
# Each step brings a database written by the version before up to date.
_MIGRATIONS = {
    2: [
        "ALTER TABLE events ADD COLUMN size INTEGER NOT NULL DEFAULT 0",
        "UPDATE events SET size = COALESCE(json_extract(body, '$.size'), 0)",
    ],
}
_INDEXES = """
CREATE INDEX IF NOT EXISTS events_by_sha256 ON events (sha256);
CREATE INDEX IF NOT EXISTS events_by_resource ON events (source, resource, sequence);
"""


@dataclass(frozen=True)
class PendingDelivery:
    """An event not yet acknowledged by one sink."""

    event: Event
    sink: str
    attempts: int
    next_attempt: float
    created_at: float = 0.0


@dataclass(frozen=True)
class DeliveryRow:
    """One delivery as ``pollerd deliveries`` lists it."""

    event_id: str
    source: str
    resource: str
    sequence: int
    status: str
    attempts: int
    last_error: str | None
    updated_at: float


DELIVERY_STATUSES = ("pending", "delivered", "dead", "superseded")


class StateStore(Protocol):
    """What the poll cycle and the delivery loop need from durable state."""

    async def load_states(self, source: str) -> dict[str, ResourceState]:
        """Every resource state of a source, by resource id."""

    async def save_states(self, source: str, states: list[ResourceState]) -> None:
        """Persist resource states (validators, backoff, errors) in one transaction."""

    async def record_change(self, source: str, state: ResourceState, event: Event, sinks: list[str]) -> Event:
        """Atomically: the resource's new state, the event, and one pending delivery per sink.

        The sequence number is allocated inside that transaction: past every event already stored
        for the resource, so a state that disagrees with the outbox never reuses a number. The
        event as committed is returned (its sequence and id differ from ``event``'s only then).
        """

    async def load_discovery(self, source: str) -> list[Resource] | None:
        """The last good discovery of a source, if any."""

    async def save_discovery(self, source: str, resources: list[Resource]) -> None:
        """Remember a good discovery, so an API outage or a restart keeps the known URLs."""

    async def pending_deliveries(self, sink: str, limit: int) -> list[PendingDelivery]:
        """Pending deliveries of a sink in event order (per resource: sequence order)."""

    async def mark_delivered(self, event_ids: list[str], sink: str) -> None:
        """The sink acknowledged these events (one transaction)."""

    async def mark_retry(self, event_id: str, sink: str, error: str, next_attempt: float) -> None:
        """The sink failed; try again at ``next_attempt``."""

    async def mark_dead(self, event_id: str, sink: str, error: str) -> None:
        """The sink refused the event for good (or it ran out of attempts): the dead-letter list."""

    async def mark_superseded(self, event_ids: list[str], sink: str) -> None:
        """Newer versions of these events' resources replace them for this sink (coalescing)."""

    async def outbox_bytes(self, sink: str) -> int:
        """Payload bytes of the sink's pending deliveries."""

    async def delivery_counts(self, sink: str) -> dict[str, int]:
        """Deliveries of a sink by status."""

    async def outbox_depth(self, sink: str) -> int:
        """How many deliveries the sink has pending."""

    async def blob_in_use(self, sha256: str) -> bool:
        """Whether a payload is still needed: a pending delivery or a resource's current content."""

    async def mark_stopped(self, source: str, reason: str | None) -> None:
        """Record that a source stopped for good (``None``: it runs again), for ``status``."""

    async def close(self) -> None:
        """Release the store."""


def _state_to_json(state: ResourceState) -> str:
    data = asdict(state)
    data["last_error"] = MASKED.optional(state.last_error)  # upstream errors may echo a key
    data["learned_strategy"] = state.learned_strategy.value if state.learned_strategy else None
    return json.dumps(data, separators=(",", ":"))


def _state_from_json(text: str) -> ResourceState:
    data: dict[str, Any] = json.loads(text)
    data["validators"] = Validators(**data["validators"])
    learned = data.get("learned_strategy")
    data["learned_strategy"] = Strategy(learned) if learned else None
    return ResourceState(**data)


class StateCorrupt(Exception):
    """The state database fails SQLite's own check."""


def _integrity_problem(db: sqlite3.Connection) -> str | None:
    """What ``PRAGMA quick_check`` finds wrong (None: nothing); a file that is no database is
    wrong too."""
    try:
        rows = [str(row[0]) for row in db.execute("PRAGMA quick_check")]
    except sqlite3.DatabaseError as exc:
        return str(exc)
    return None if rows == ["ok"] else "; ".join(rows[:3])


class SqliteStore:
    """The embedded StateStore: one SQLite file in the state directory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.created = False  # open() made a new, empty database (none was there, or 0 bytes)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pollerd-sqlite")
        self._db: sqlite3.Connection | None = None

    async def open(self) -> None:
        """Open (and create or migrate) the database."""
        await self._call(self.open_sync)

    def open_sync(self, readonly: bool = False) -> None:
        """Open on the calling thread. ``readonly`` (the CLI's reports): never create, migrate or
        write; FileNotFoundError when there is no state yet."""
        if readonly:
            if not self.path.exists():
                raise FileNotFoundError(self.path)
            self._db = sqlite3.connect(
                f"{self.path.resolve().as_uri()}?mode=ro",
                uri=True,
                isolation_level=None,
                check_same_thread=False,
            )
            self._db.execute("PRAGMA busy_timeout=5000")
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.created = not self.path.exists() or self.path.stat().st_size == 0
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        problem = _integrity_problem(db)
        if problem is not None:
            db.close()
            raise StateCorrupt(
                f"{self.path} is damaged ({problem}); restore it from a backup, "
                "or move it aside to start afresh (every resource is then "
                "announced again as a first version)"
            )
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA busy_timeout=5000")
        fresh = db.execute("SELECT name FROM sqlite_master WHERE name='events'").fetchone() is None
        db.executescript(_SCHEMA)
        row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        version = SCHEMA_VERSION if fresh else int(row[0]) if row else 1
        if version > SCHEMA_VERSION:
            db.close()
            raise RuntimeError(f"{self.path} was written by a newer pollerd (schema {version})")
        for step in range(version + 1, SCHEMA_VERSION + 1):
            for statement in _MIGRATIONS[step]:
                db.execute(statement)
        db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        db.executescript(_INDEXES)
        self._db = db

    def close_sync(self) -> None:
        """Close a connection opened with ``open_sync`` (the CLI's commands)."""
        if self._db is not None:
            self._db.close()
            self._db = None
        self._executor.shutdown(wait=False)

    async def _call(self, fn: Callable[..., _T], *args: Any) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def on_thread(self, fn: Callable[[SqliteStore], _T]) -> _T:
        """Run ``fn(store)`` on the store's thread, where the synchronous methods may be used."""
        return await self._call(fn, self)

    @property
    def db(self) -> sqlite3.Connection:
        """The open connection (only to be used on the store's thread)."""
        if self._db is None:
            raise RuntimeError("the state store is not open")
        return self._db

    async def load_states(self, source: str) -> dict[str, ResourceState]:
        """Every resource state of a source, by resource id."""
        return await self._call(self.read_states, source)

    def read_states(self, source: str) -> dict[str, ResourceState]:
        """Synchronous load_states, for the CLI's read-only commands."""
        rows = self.db.execute(
            "SELECT resource, state FROM resources WHERE source=? ORDER BY resource", (source,)
        )
        return {resource: _state_from_json(state) for resource, state in rows}

    async def save_states(self, source: str, states: list[ResourceState]) -> None:
        """Persist resource states in one transaction."""
        if states:  # shallow copies: the store's thread serialises them while polls go on
            await self._call(self._save_states, source, [copy.copy(s) for s in states])

    def _save_states(self, source: str, states: list[ResourceState]) -> None:
        rows = [(state.resource_id, _state_to_json(state)) for state in states]
        with self._transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO resources (source, resource, state) VALUES (?, ?, ?)",
                [(source, resource, state) for resource, state in rows],
            )

    async def record_change(self, source: str, state: ResourceState, event: Event, sinks: list[str]) -> Event:
        """Atomically: the resource's new state, the event (its sequence allocated here), and one
        pending delivery per sink; the event as committed."""
        return await self._call(self._record_change, source, copy.copy(state), event, sinks)

    def _record_change(self, source: str, state: ResourceState, event: Event, sinks: list[str]) -> Event:
        now = time.time()
        with self._transaction() as db:
            sequence = self._next_sequence(db, source, state.resource_id)
            if sequence != event.sequence:
                _log.warning(
                    "sequence repaired: the outbox is ahead of the resource's state",
                    source=source,
                    resource=state.resource_id,
                    expected=event.sequence,
                    allocated=sequence,
                )
                event = dataclasses.replace(
                    event,
                    sequence=sequence,
                    event_id=Event.make_id(source, state.resource_id, sequence, event.sha256),
                )
                state.sequence = sequence
            db.execute(
                "INSERT OR REPLACE INTO resources (source, resource, state) VALUES (?,?,?)",
                (source, state.resource_id, _state_to_json(state)),
            )
            db.execute(
                "INSERT INTO events (event_id, source, resource, sequence, sha256, body, extension,"
                " created_at, size) VALUES (?,?,?,?,?,?,?,?,?)",
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
                ),
            )
            db.executemany(
                "INSERT INTO deliveries (event_id, sink, status, next_attempt, updated_at)"
                " VALUES (?, ?, 'pending', ?, ?)",
                [(event.event_id, sink, now, now) for sink in sinks],
            )
        return event

    @staticmethod
    def _next_sequence(db: sqlite3.Connection, source: str, resource: str) -> int:
        """One past the highest sequence the resource's stored state or its events have."""
        row = db.execute(
            "SELECT MAX(COALESCE((SELECT MAX(sequence) FROM events WHERE source=? AND resource=?),"
            " 0), COALESCE((SELECT json_extract(state, '$.sequence') FROM resources"
            " WHERE source=? AND resource=?), 0))",
            (source, resource, source, resource),
        ).fetchone()
        return int(row[0]) + 1

    async def load_discovery(self, source: str) -> list[Resource] | None:
        """The last good discovery of a source, if any."""
        return await self._call(self._load_discovery, source)

    def _load_discovery(self, source: str) -> list[Resource] | None:
        row = self.db.execute("SELECT resources FROM discoveries WHERE source=?", (source,)).fetchone()
        return None if row is None else [Resource.from_json(r) for r in json.loads(row[0])]

    async def save_discovery(self, source: str, resources: list[Resource]) -> None:
        """Remember a good discovery."""
        text = json.dumps([r.to_json() for r in resources])
        await self._call(self._save_discovery, source, text)

    def _save_discovery(self, source: str, text: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO discoveries VALUES (?, ?, ?)", (source, text, time.time()))

    async def pending_deliveries(self, sink: str, limit: int) -> list[PendingDelivery]:
        """Pending deliveries of a sink in event order."""
        return await self._call(self.read_pending, sink, limit)

    def read_pending(self, sink: str, limit: int) -> list[PendingDelivery]:
        """Synchronous pending_deliveries, for the CLI."""
        rows = self.db.execute(
            "SELECT e.body, e.extension, d.attempts, d.next_attempt, e.created_at FROM deliveries d"
            " JOIN events e ON e.event_id = d.event_id"
            " WHERE d.sink=? AND d.status='pending' ORDER BY e.id LIMIT ?",
            (sink, limit),
        )
        return [
            PendingDelivery(Event.from_json(json.loads(body), extension), sink, attempts, at, created)
            for body, extension, attempts, at, created in rows
        ]

    async def mark_delivered(self, event_ids: list[str], sink: str) -> None:
        """The sink acknowledged these events (one transaction)."""
        await self._call(self._settle, event_ids, sink, "delivered", 1)

    async def mark_retry(self, event_id: str, sink: str, error: str, next_attempt: float) -> None:
        """The sink failed; try again at ``next_attempt``."""
        await self._call(self._mark, event_id, sink, "pending", error, next_attempt)

    def _mark(
        self, event_id: str, sink: str, status: str, error: str | None, next_attempt: float | None
    ) -> None:
        self.db.execute(
            "UPDATE deliveries SET status=?, attempts=attempts+1, last_error=?,"
            " next_attempt=COALESCE(?, next_attempt), updated_at=? WHERE event_id=? AND sink=?",
            (status, MASKED.optional(error), next_attempt, time.time(), event_id, sink),
        )

    async def mark_dead(self, event_id: str, sink: str, error: str) -> None:
        """Move the delivery to the dead-letter list."""
        await self._call(self._mark, event_id, sink, "dead", error, None)

    async def mark_superseded(self, event_ids: list[str], sink: str) -> None:
        """Record the deliveries as superseded by newer versions."""
        await self._call(self._settle, event_ids, sink, "superseded", 0)

    def _settle(self, event_ids: list[str], sink: str, status: str, attempted: int) -> None:
        """Close pending deliveries with ``status`` in one transaction (``attempted``: 1 when
        this closes an attempt)."""
        with self._transaction() as db:
            db.executemany(
                "UPDATE deliveries SET status=?, attempts=attempts+?, last_error=NULL,"
                " updated_at=? WHERE event_id=? AND sink=? AND status='pending'",
                [(status, attempted, time.time(), event_id, sink) for event_id in event_ids],
            )

    async def outbox_bytes(self, sink: str) -> int:
        """Payload bytes of the sink's pending deliveries."""
        return await self._call(self._outbox_bytes, sink)

    def _outbox_bytes(self, sink: str) -> int:
        row = self.db.execute(
            "SELECT COALESCE(SUM(e.size), 0) FROM deliveries d"
            " JOIN events e ON e.event_id = d.event_id WHERE d.sink=? AND d.status='pending'",
            (sink,),
        ).fetchone()
        return int(row[0])

    async def delivery_counts(self, sink: str) -> dict[str, int]:
        """Deliveries of a sink by status."""
        return await self._call(self.count_by_status, sink)

    def count_by_status(self, sink: str) -> dict[str, int]:
        """Deliveries of a sink by status (for the CLI)."""
        counts = dict.fromkeys(DELIVERY_STATUSES, 0)
        for status, count in self.db.execute(
            "SELECT status, COUNT(*) FROM deliveries WHERE sink=? GROUP BY status", (sink,)
        ):
            counts[str(status)] = int(count)
        return counts

    def list_deliveries(self, sink: str, statuses: tuple[str, ...], limit: int) -> list[DeliveryRow]:
        """Deliveries of a sink with one of ``statuses``, oldest event first (for the CLI)."""
        marks = ",".join("?" * len(statuses))  # placeholders only: the values are bound
        sql = (
            "SELECT d.event_id, e.source, e.resource, e.sequence, d.status, d.attempts,"  # noqa: S608
            " d.last_error, d.updated_at FROM deliveries d JOIN events e ON e.event_id = d.event_id"
            f" WHERE d.sink=? AND d.status IN ({marks}) ORDER BY e.id LIMIT ?"
        )
        rows = self.db.execute(sql, (sink, *statuses, limit))
        return [DeliveryRow(*row) for row in rows]

    def event_sha256(self, event_id: str) -> str | None:
        """The payload hash of an event (for the CLI)."""
        row = self.db.execute("SELECT sha256 FROM events WHERE event_id=?", (event_id,)).fetchone()
        return None if row is None else str(row[0])

    def redeliver(self, event_id: str | None, sink: str | None) -> int:
        """Make deliveries pending again: one event's (any status but pending), or every dead
        one; ``sink`` limits it to one sink. Returns how many (for the CLI)."""
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
        with self._transaction() as db:
            return db.execute(query, args).rowcount

    async def outbox_depth(self, sink: str) -> int:
        """How many deliveries the sink has pending."""
        return await self._call(self.count_pending, sink)

    def count_pending(self, sink: str) -> int:
        """Synchronous outbox_depth, for the CLI."""
        row = self.db.execute(
            "SELECT COUNT(*) FROM deliveries WHERE sink=? AND status='pending'", (sink,)
        ).fetchone()
        return int(row[0])

    async def blob_in_use(self, sha256: str) -> bool:
        """Whether a payload is still needed: by a pending or dead delivery (it may be
        redelivered) or as a resource's current version."""
        return await self._call(self._blob_in_use, sha256)

    def _blob_in_use(self, sha256: str) -> bool:
        pending = self.db.execute(
            "SELECT 1 FROM deliveries d JOIN events e ON e.event_id = d.event_id"
            " WHERE e.sha256=? AND d.status IN ('pending', 'dead') LIMIT 1",
            (sha256,),
        ).fetchone()
        if pending:
            return True
        current = self.db.execute(
            "SELECT 1 FROM resources WHERE json_extract(state, '$.sha256')=? LIMIT 1", (sha256,)
        ).fetchone()
        return current is not None

    async def mark_stopped(self, source: str, reason: str | None) -> None:
        """Record (or clear) why a source stopped."""
        await self._call(self._mark_stopped, f"stopped:{source}", reason)

    def _mark_stopped(self, key: str, reason: str | None) -> None:
        if reason is None:
            self.db.execute("DELETE FROM meta WHERE key=?", (key,))
        else:
            self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, reason))

    def read_stopped(self, source: str) -> str | None:
        """Why a source stopped, if it did (for the CLI)."""
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (f"stopped:{source}",)).fetchone()
        return None if row is None else str(row[0])

    def sources(self) -> list[str]:
        """Every source with stored state (for the CLI)."""
        return [row[0] for row in self.db.execute("SELECT DISTINCT source FROM resources ORDER BY source")]

    async def close(self) -> None:
        """Close the connection and stop the store's thread."""
        if self._db is not None:
            await self._call(self.db.close)
            self._db = None
        self._executor.shutdown(wait=True)

    def _transaction(self) -> _Transaction:
        return _Transaction(self.db)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on error."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> sqlite3.Connection:
        self._db.execute("BEGIN IMMEDIATE")
        return self._db

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")
