"""Acknowledgements committed in batches: a sink's acknowledged deliveries are written together,
so a fast sink does not cost one transaction per event, and a crash resends only a few."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from pollerd.store.rows import PendingDelivery

ACK_BATCH = 50  # acknowledgements committed together, at most this many ...
ACK_WITHIN = 0.1  # ... or this many seconds after the first: a crash resends no more than that


class Acks:
    """Acknowledgements committed together: ``ACK_BATCH`` at most, or ``ACK_WITHIN`` seconds
    after the first (a crash resends no more than that)."""

    def __init__(self, commit: Callable[[list[PendingDelivery]], Awaitable[None]]) -> None:
        self._commit = commit
        self._items: list[PendingDelivery] = []
        self._first = 0.0

    async def add(self, item: PendingDelivery) -> None:
        """One more delivery was acknowledged by the sink."""
        if not self._items:
            self._first = time.monotonic()
        self._items.append(item)
        if len(self._items) >= ACK_BATCH:
            await self.flush()

    async def due(self) -> None:
        """Commit what waits longer than ``ACK_WITHIN``."""
        if self._items and time.monotonic() - self._first >= ACK_WITHIN:
            await self.flush()

    async def flush(self) -> None:
        """Commit what waits."""
        items, self._items = self._items, []
        await self._commit(items)
