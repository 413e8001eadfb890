"""The reports' reads (``StateView``) from the PostgreSQL state."""

from __future__ import annotations

from typing import Any

from pollerd.core.model import ResourceState
from pollerd.desk.book import Decision
from pollerd.store.postgres import desk as pg_desk
from pollerd.store.postgres import leases as pg_leases
from pollerd.store.postgres import queries as pg_queries
from pollerd.store.postgres.leases import LeaseRow
from pollerd.store.postgres.store import PgStore
from pollerd.store.rows import DeliveryRow


class DatabaseView:
    """What ``pollerd status`` and ``deliveries`` read, from the database."""

    def __init__(self, store: PgStore) -> None:
        self._store = store

    async def states(self, source: str) -> dict[str, ResourceState]:
        return await self._store.run(pg_queries.load_states, source)

    async def source_note(self, source: str, what: str) -> str | None:
        return await self._store.run(pg_queries.source_note, source, what)

    async def counts(self, sink: str) -> dict[str, int]:
        return await self._store.run(pg_queries.delivery_counts, sink)

    async def deliveries(self, sink: str, statuses: tuple[str, ...], limit: int) -> list[DeliveryRow]:
        return await self._store.run(pg_queries.list_deliveries, sink, statuses, limit)

    async def leases(self) -> list[LeaseRow]:
        return await self._store.run(pg_leases.leases)

    async def decisions(self, source: str) -> list[Decision]:
        return await self._store.run(pg_desk.decisions, source)

    async def latest_told(self, source: str, prefix: str) -> dict[str, dict[str, Any]]:
        return await self._store.run(pg_desk.latest_told, source, prefix)
