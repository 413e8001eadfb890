"""What the command line's reports read, from either engine: ``viewing(config)`` opens the state
read-only (SQLite) or connects (PostgreSQL) and never creates one."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

from pollerd.config import DaemonConfig
from pollerd.core.model import ResourceState
from pollerd.desk.book import Decision
from pollerd.store.postgres.leases import LeaseRow
from pollerd.store.rows import DeliveryRow
from pollerd.store.sqlite import desk, queries
from pollerd.store.sqlite.schema import connect_readonly, state_path


class StateView(Protocol):
    """The reports' reads."""

    async def states(self, source: str) -> dict[str, ResourceState]:
        """Every resource state of a source."""

    async def source_note(self, source: str, what: str) -> str | None:
        """What the daemon kept of a source for ``status`` (see ``StateStore.note_source``)."""

    async def counts(self, sink: str) -> dict[str, int]:
        """Deliveries of a sink by status."""

    async def deliveries(self, sink: str, statuses: tuple[str, ...], limit: int) -> list[DeliveryRow]:
        """Deliveries of a sink with one of ``statuses``, oldest event first."""

    async def leases(self) -> list[LeaseRow]:
        """Who holds which lease (replicas on PostgreSQL; none with SQLite)."""

    async def decisions(self, source: str) -> list[Decision]:
        """The desk's decisions of a source, oldest first."""

    async def latest_told(self, source: str, prefix: str) -> dict[str, dict[str, Any]]:
        """The last election event of each subject starting with ``prefix``."""


class _FileView:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    async def states(self, source: str) -> dict[str, ResourceState]:
        return queries.load_states(self._db, source)

    async def source_note(self, source: str, what: str) -> str | None:
        return queries.source_note(self._db, source, what)

    async def counts(self, sink: str) -> dict[str, int]:
        return queries.delivery_counts(self._db, sink)

    async def deliveries(self, sink: str, statuses: tuple[str, ...], limit: int) -> list[DeliveryRow]:
        return queries.list_deliveries(self._db, sink, statuses, limit)

    async def leases(self) -> list[LeaseRow]:
        return []

    async def decisions(self, source: str) -> list[Decision]:
        return desk.decisions(self._db, source)

    async def latest_told(self, source: str, prefix: str) -> dict[str, dict[str, Any]]:
        return desk.latest_told(self._db, source, prefix)


@asynccontextmanager
async def viewing(daemon: DaemonConfig) -> AsyncIterator[StateView | None]:
    """The state for a report, or None when there is none yet (none is made)."""
    if daemon.database is not None:
        from pollerd.store.postgres.store import PgStore
        from pollerd.store.postgres.view import DatabaseView  # psycopg, only where there is a database

        store = PgStore.configured(daemon, max_connections=1)
        await store.open()
        try:
            yield DatabaseView(store)
        finally:
            await store.close()
        return
    try:
        db = await asyncio.to_thread(connect_readonly, state_path(daemon.state_dir))
    except FileNotFoundError:
        yield None
        return
    try:
        yield _FileView(db)
    finally:
        db.close()
