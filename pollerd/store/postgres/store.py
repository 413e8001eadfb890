"""``PgStore``, the StateStore on PostgreSQL: the state several replicas share. Every call takes a
connection from a small pool and runs one of ``pg_queries``; the schema is migrated at ``open``."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from pollerd.config import DaemonConfig
from pollerd.core.masking import MASKED
from pollerd.core.model import Event, Resource, ResourceState
from pollerd.desk.book import Decision
from pollerd.store.postgres import desk as pg_desk
from pollerd.store.postgres import leases as pg_leases
from pollerd.store.postgres import queries as pg_queries
from pollerd.store.postgres.leases import Fence
from pollerd.store.postgres.queries import Connection
from pollerd.store.postgres.schema import migrate
from pollerd.store.protocol import Adopt, Change, StateUnavailable
from pollerd.store.rows import PendingDelivery, Retention

_T = TypeVar("_T")
_P = ParamSpec("_P")


class PgStore:
    """The state in a PostgreSQL database (``url``: a libpq URL; ``password``, if not in it or in
    ``PGPASSWORD`` / ``.pgpass``)."""

    def __init__(self, url: str, password: str | None = None, max_connections: int = 4) -> None:
        self.created = False  # open() made the schema (the database held no pollerd state)
        self._url = url
        self._extra: dict[str, Any] = {"autocommit": True}
        if password is not None:
            self._extra["password"] = password
        self._pool = AsyncConnectionPool(
            url, min_size=1, max_size=max_connections, kwargs=self._extra, open=False
        )
        # the leases' own connection: a renewal never queues behind the work's writes
        self._lease_pool = AsyncConnectionPool(url, min_size=1, max_size=1, kwargs=self._extra, open=False)
        self._fence: Fence | None = None
        self.retention = Retention()

    @classmethod
    def configured(cls, daemon: DaemonConfig, max_connections: int = 4) -> PgStore:
        """The store ``[daemon] database`` (and ``database_password_file``) name."""
        assert daemon.database is not None
        password = daemon.database_password.get_secret_value() if daemon.database_password else None
        return cls(daemon.database.get_secret_value(), password, max_connections)

    async def open(self, timeout: float = 30.0) -> None:
        """Connect and migrate the schema (under an advisory lock: replicas starting together
        migrate once)."""
        await self._pool.open(wait=True, timeout=timeout)
        await self._lease_pool.open(wait=True, timeout=timeout)
        self.created = await self.run(migrate) == 0

    async def listen(self, on_change: Callable[[], None]) -> None:
        """Call ``on_change`` whenever any replica commits a change to the outbox (PostgreSQL's
        LISTEN on a connection of its own), until cancelled; StateUnavailable if it breaks."""
        try:
            connection = await AsyncConnection.connect(self._url, **self._extra)
        except psycopg.OperationalError as exc:
            raise StateUnavailable(f"cannot listen for changes: {MASKED(str(exc))}") from exc
        async with connection:
            await connection.execute(f"LISTEN {pg_queries.OUTBOX_CHANNEL}")
            on_change()  # whatever was committed before listening
            try:
                async for _ in connection.notifies():
                    on_change()
            except psycopg.OperationalError as exc:
                raise StateUnavailable(f"stopped listening for changes: {MASKED(str(exc))}") from exc

    async def close(self) -> None:
        """Close every connection."""
        await self._pool.close()
        await self._lease_pool.close()

    def with_fence(self, fence: Fence) -> PgStore:
        """This store for the work of one lease: every write checks, in its own transaction, that
        the lease is still held (Fenced when it is not)."""
        fenced = copy.copy(self)
        fenced._fence = fence
        return fenced

    async def run(
        self, query: Callable[Concatenate[Connection, _P], Awaitable[_T]], *args: _P.args, **kwargs: _P.kwargs
    ) -> _T:
        """``query(connection, ...)`` on a pooled connection; StateUnavailable when the database
        cannot be reached."""
        return await self._run_on(self._pool, query, *args, **kwargs)

    async def run_leases(
        self, query: Callable[Concatenate[Connection, _P], Awaitable[_T]], *args: _P.args, **kwargs: _P.kwargs
    ) -> _T:
        """``run`` on the connection kept for the leases (heartbeats, renewals, takeovers)."""
        return await self._run_on(self._lease_pool, query, *args, **kwargs)

    async def _run_on(
        self,
        pool: AsyncConnectionPool[Any],
        query: Callable[Concatenate[Connection, _P], Awaitable[_T]],
        *args: _P.args,
        **kwargs: _P.kwargs,
    ) -> _T:
        try:
            async with pool.connection() as db:
                return await query(db, *args, **kwargs)
        except (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout) as exc:
            raise StateUnavailable(f"the database cannot be reached: {MASKED(str(exc))}") from exc

    async def _write(
        self, query: Callable[Concatenate[Connection, _P], Awaitable[_T]], *args: _P.args, **kwargs: _P.kwargs
    ) -> _T:
        """A write, under this store's lease (if it has one) in the same transaction."""
        fence = self._fence

        async def fenced(db: Connection) -> _T:
            # pipelined: statements go out without waiting for each answer, only where a result
            # is read (the fence, a sequence); a change costs a few round trips, not a dozen
            async with db.pipeline(), db.transaction():
                await pg_leases.check(db, fence)
                return await query(db, *args, **kwargs)

        return await self.run(fenced)

    async def load_states(self, source: str) -> dict[str, ResourceState]:
        """Every resource state of a source, by resource id."""
        return await self.run(pg_queries.load_states, source)

    async def save_states(self, source: str, states: list[ResourceState]) -> None:
        """Persist resource states in one transaction."""
        if states:  # copies: polls go on changing the states while the statement is sent
            await self._write(pg_queries.save_states, source, [copy.copy(s) for s in states])

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
        return await self._write(
            pg_queries.record_change, source, copy.copy(state), event, sinks, payload, settles
        )

    async def record_changes(self, changes: list[Change], adopt: Adopt) -> list[Event | Exception]:
        """The changes committed (see ``StateStore``): the downloads adopted in one trip to a
        thread, then each change in a transaction of its own (each under the lease, each
        announced to the other replicas as it commits)."""
        adopted = await asyncio.to_thread(adopt, [c.download for c in changes])
        results: list[Event | Exception] = []
        for change, payload in zip(changes, adopted, strict=True):
            if isinstance(payload, Exception):
                results.append(payload)
                continue
            try:
                results.append(
                    await self.record_change(
                        change.source, change.state, change.event, change.sinks, payload, change.settles
                    )
                )
            except Exception as exc:  # this change is not committed; it is tried again
                results.append(exc)
        return results

    async def add_decision(self, decision: Decision) -> Decision:
        """Keep a new decision of the desk (see ``StateStore``): any replica may."""
        return await self.run(pg_desk.add_decision, decision)

    async def decisions(self, source: str | None, status: str | None = None) -> list[Decision]:
        """The desk's decisions (see ``StateStore``)."""
        return await self.run(pg_desk.decisions, source, status)

    async def latest_told(self, source: str, prefix: str) -> dict[str, dict[str, Any]]:
        """The last election event of each subject starting with ``prefix``."""
        return await self.run(pg_desk.latest_told, source, prefix)

    async def settle_decision(self, decision: Decision) -> bool:
        """Record a decision refused (see ``StateStore``), under this store's lease."""
        return await self._write(pg_desk.settle_decision, decision)

    async def load_discovery(self, source: str) -> list[Resource] | None:
        """The last good discovery of a source, if any."""
        return await self.run(pg_queries.load_discovery, source)

    async def save_discovery(self, source: str, resources: list[Resource]) -> None:
        """Remember a good discovery."""
        await self._write(pg_queries.save_discovery, source, resources)

    async def pending_deliveries(self, sink: str, limit: int) -> list[PendingDelivery]:
        """Pending deliveries of a sink in event order."""
        return await self.run(pg_queries.pending_deliveries, sink, limit)

    async def mark_delivered(self, event_ids: list[str], sink: str) -> None:
        """The sink acknowledged these events (one statement)."""
        await self._write(pg_queries.settle, event_ids, sink, "delivered", 1)

    async def mark_filtered(self, event_ids: list[str], sink: str) -> None:
        """The sink's subscription leaves these events out: settled, never sent."""
        await self._write(pg_queries.settle, event_ids, sink, "filtered", 0)

    async def mark_superseded(self, event_ids: list[str], sink: str) -> None:
        """Newer versions replace these events for this sink."""
        await self._write(pg_queries.settle, event_ids, sink, "superseded", 0)

    async def mark_retry(self, event_id: str, sink: str, error: str, next_attempt: float) -> None:
        """The sink failed; try again at ``next_attempt``."""
        await self._write(pg_queries.mark_attempt, event_id, sink, "pending", error, next_attempt)

    async def mark_dead(self, event_id: str, sink: str, error: str) -> None:
        """Move the delivery to the dead-letter list."""
        await self._write(pg_queries.mark_attempt, event_id, sink, "dead", error, None)

    async def outbox_bytes(self, sink: str) -> int:
        """Payload bytes of the sink's pending deliveries."""
        return await self.run(pg_queries.outbox_bytes, sink)

    async def latest_election_events(
        self, limit: int, source: str, numbers: bool = False
    ) -> list[dict[str, Any]]:
        """The newest stories (or ``numbers``) of a source, newest first."""
        return await self.run(pg_queries.latest_election_events, limit, source, numbers)

    async def delivery_counts(self, sink: str) -> dict[str, int]:
        """Deliveries of a sink by status."""
        return await self.run(pg_queries.delivery_counts, sink)

    async def outbox_depth(self, sink: str) -> int:
        """How many deliveries the sink has pending."""
        return await self.run(pg_queries.outbox_depth, sink)

    async def blob_in_use(self, sha256: str) -> bool:
        """Whether a payload is still needed."""
        return await self.run(pg_queries.blob_in_use, sha256, self.retention.kept_after())

    async def committed_between(self, after: float, before: float) -> list[str]:
        """The payloads of the versions committed in [after, before)."""
        return await self.run(pg_queries.committed_between, after, before)

    async def note_source(self, source: str, what: str, text: str | None) -> None:
        """Keep (or clear) what ``status`` tells of a source."""
        await self._write(pg_queries.note_source, source, what, text)
