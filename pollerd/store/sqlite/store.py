"""``SqliteStore``, the embedded StateStore: one SQLite file in the state directory. Every call
runs one of ``queries`` on one dedicated thread, so the event loop never waits on the disk and the
connection is never shared between threads. The CLI's commands open the file with ``reading`` and
``writing`` and call the same queries."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from pollerd.core.model import Event, Resource, ResourceState
from pollerd.desk.book import Decision
from pollerd.store.protocol import Adopt, Change, StateRefused
from pollerd.store.rows import PendingDelivery, Retention
from pollerd.store.sqlite import desk, queries
from pollerd.store.sqlite.high_water import HighWater
from pollerd.store.sqlite.schema import connect, connect_readonly, state_path

_T = TypeVar("_T")
_A = TypeVar("_A")
_P = ParamSpec("_P")
Query = Callable[Concatenate[sqlite3.Connection, _P], _T]


def _inserted(
    db: sqlite3.Connection,
    source: str,
    state: ResourceState,
    event: Event,
    sinks: list[str],
    settles: Decision | None,
) -> Event:
    """A change inside the caller's transaction (its state copied: a failed group is tried again
    change by change), and the desk's decision it settles."""
    event = queries.insert_change(db, source, copy.copy(state), event, sinks)
    if settles is not None:
        applied = dataclasses.replace(settles, event_id=event.event_id)
        if not desk.settle_decision(db, applied):
            raise StateRefused(f"decision {applied.id} was settled by another writer")
    return event


def _in_transaction(db: sqlite3.Connection, write: Callable[[sqlite3.Connection, _A], _T], value: _A) -> _T:
    with queries.transaction(db):
        return write(db, value)


def _parts(change: Change) -> tuple[str, ResourceState, Event, list[str], Decision | None]:
    return change.source, change.state, change.event, change.sinks, change.settles


class SqliteStore:
    """The state of one state directory, for the daemon (async; one connection, one thread)."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_path(state_dir)
        self.created = False  # open() made a new, empty database (none was there, or 0 bytes)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pollerd-sqlite")
        self._db: sqlite3.Connection | None = None
        self.retention = Retention()
        self._high_water = HighWater(state_dir)
        self.lost: str | None = None  # evidence that the database lost commits (see HighWater)

    async def open(self) -> None:
        """Open (and create or migrate) the database; StateCorrupt when it is damaged. Commits
        lost since the last run are found here (``lost``); the mark then starts again from
        what the database holds, so they are said once."""
        self._db, self.created = await self._thread(connect, self.path)
        self.lost = await self.run(self._high_water.lost)
        await self.run(self._high_water.advance)

    async def close(self) -> None:
        """Close the connection and stop the store's thread."""
        if self._db is not None:
            await self._thread(self._db.close)
            await self._thread(self._high_water.close)
            self._db = None
        self._executor.shutdown(wait=True)

    async def run(self, query: Query[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """``query(connection, ...)`` on the store's thread."""
        db = self._db
        if db is None:
            raise RuntimeError("the state store is not open")
        return await self._thread(lambda: query(db, *args, **kwargs))

    async def _thread(self, fn: Callable[..., _T], *args: object) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def load_states(self, source: str) -> dict[str, ResourceState]:
        """Every resource state of a source, by resource id."""
        return await self.run(queries.load_states, source)

    async def save_states(self, source: str, states: list[ResourceState]) -> None:
        """Persist resource states in one transaction."""
        if states:  # shallow copies: the store's thread serialises them while polls go on
            await self.run(queries.save_states, source, [copy.copy(s) for s in states])
        await self._thread(self._high_water.sync)  # once a cycle: the commits' mark made durable

    async def record_change(
        self,
        source: str,
        state: ResourceState,
        event: Event,
        sinks: list[str],
        payload: Path,
        settles: Decision | None = None,
    ) -> Event:
        """The change committed (see ``StateStore``); the event as committed."""
        return await self.run(self._committed, source, copy.copy(state), event, sinks, settles)

    def _committed(
        self,
        db: sqlite3.Connection,
        source: str,
        state: ResourceState,
        event: Event,
        sinks: list[str],
        settles: Decision | None,
    ) -> Event:
        with queries.transaction(db):
            event = _inserted(db, source, state, event, sinks, settles)
        self._high_water.advance(db)
        return event

    async def record_changes(self, changes: list[Change], adopt: Adopt) -> list[Event | Exception]:
        """The changes committed (see ``StateStore``) with one trip to the store's thread: every
        download adopted, then one transaction for them all (one fsync of the log); when that
        fails, each in a transaction of its own, so one bad change costs only itself."""
        copies = [dataclasses.replace(change, state=copy.copy(change.state)) for change in changes]
        return await self.run(self._committed_all, copies, adopt)

    def _committed_all(
        self, db: sqlite3.Connection, changes: list[Change], adopt: Adopt
    ) -> list[Event | Exception]:
        payloads = adopt([c.download for c in changes])
        results: list[Event | Exception] = [
            p if isinstance(p, Exception) else c.event for c, p in zip(changes, payloads, strict=True)
        ]
        adopted = [i for i, payload in enumerate(payloads) if not isinstance(payload, Exception)]
        try:
            with queries.transaction(db):
                for i in adopted:
                    results[i] = _inserted(db, *_parts(changes[i]))
        except Exception:
            for i in adopted:
                try:
                    with queries.transaction(db):
                        results[i] = _inserted(db, *_parts(changes[i]))
                except Exception as exc:  # this change is not committed; it is tried again
                    results[i] = exc
        self._high_water.advance(db)
        return results

    async def add_decision(self, decision: Decision) -> Decision:
        """Keep a new decision of the desk (see ``StateStore``)."""
        return await self.run(_in_transaction, desk.add_decision, decision)

    async def decisions(self, source: str | None, status: str | None = None) -> list[Decision]:
        """The desk's decisions (see ``StateStore``)."""
        return await self.run(desk.decisions, source, status)

    async def latest_told(self, source: str, prefix: str) -> dict[str, dict[str, Any]]:
        """The last election event of each subject starting with ``prefix``."""
        return await self.run(desk.latest_told, source, prefix)

    async def settle_decision(self, decision: Decision) -> bool:
        """Record a decision refused (see ``StateStore``)."""
        return await self.run(_in_transaction, desk.settle_decision, decision)

    async def load_discovery(self, source: str) -> list[Resource] | None:
        """The last good discovery of a source, if any."""
        return await self.run(queries.load_discovery, source)

    async def save_discovery(self, source: str, resources: list[Resource]) -> None:
        """Remember a good discovery."""
        await self.run(queries.save_discovery, source, resources)

    async def pending_deliveries(self, sink: str, limit: int) -> list[PendingDelivery]:
        """Pending deliveries of a sink in event order."""
        return await self.run(queries.pending_deliveries, sink, limit)

    async def mark_delivered(self, event_ids: list[str], sink: str) -> None:
        """The sink acknowledged these events (one transaction)."""
        await self.run(queries.settle, event_ids, sink, "delivered", 1)

    async def mark_filtered(self, event_ids: list[str], sink: str) -> None:
        """The sink's subscription leaves these events out: settled, never sent."""
        await self.run(queries.settle, event_ids, sink, "filtered", 0)

    async def mark_superseded(self, event_ids: list[str], sink: str) -> None:
        """Newer versions replace these events for this sink."""
        await self.run(queries.settle, event_ids, sink, "superseded", 0)

    async def mark_retry(self, event_id: str, sink: str, error: str, next_attempt: float) -> None:
        """The sink failed; try again at ``next_attempt``."""
        await self.run(queries.mark_attempt, event_id, sink, "pending", error, next_attempt)

    async def mark_dead(self, event_id: str, sink: str, error: str) -> None:
        """Move the delivery to the dead-letter list."""
        await self.run(queries.mark_attempt, event_id, sink, "dead", error, None)

    async def outbox_bytes(self, sink: str) -> int:
        """Payload bytes of the sink's pending deliveries."""
        return await self.run(queries.outbox_bytes, sink)

    async def latest_election_events(
        self, limit: int, source: str, numbers: bool = False
    ) -> list[dict[str, Any]]:
        """The newest stories (or ``numbers``) of a source, newest first."""
        return await self.run(queries.latest_election_events, limit, source, numbers)

    async def delivery_counts(self, sink: str) -> dict[str, int]:
        """Deliveries of a sink by status."""
        return await self.run(queries.delivery_counts, sink)

    async def outbox_depth(self, sink: str) -> int:
        """How many deliveries the sink has pending."""
        return await self.run(queries.outbox_depth, sink)

    async def blob_in_use(self, sha256: str) -> bool:
        """Whether a payload is still needed."""
        return await self.run(queries.blob_in_use, sha256, self.retention.kept_after())

    async def committed_between(self, after: float, before: float) -> list[str]:
        """The payloads of the versions committed in [after, before)."""
        return await self.run(queries.committed_between, after, before)

    async def note_source(self, source: str, what: str, text: str | None) -> None:
        """Keep (or clear) what ``status`` tells of a source."""
        await self.run(queries.note_source, source, what, text)


@contextmanager
def reading(state_dir: Path) -> Iterator[sqlite3.Connection | None]:
    """The state opened read-only for a report (None when there is none yet: none is made)."""
    try:
        db = connect_readonly(state_path(state_dir))
    except FileNotFoundError:
        yield None
        return
    try:
        yield db
    finally:
        db.close()


@contextmanager
def writing(state_dir: Path) -> Iterator[sqlite3.Connection]:
    """The state opened for writing on the calling thread (its writer must hold the state lock)."""
    db, _ = connect(state_path(state_dir))
    try:
        yield db
    finally:
        db.close()
