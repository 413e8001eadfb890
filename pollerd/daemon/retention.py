"""Payloads kept for redelivery (``daemon.redeliver_keep``, 24 h by default): a version's payload
stays while its window lasts, then this sweep lets it go, unless a pending or dead delivery, a
current version or a later version's chain still needs it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from pollerd.store.blobs import BlobStore
from pollerd.store.protocol import StateStore

LONGEST_PAUSE = 600.0


class RetentionSweep:
    """Releases the payloads of the versions whose redelivery window has ended since the last
    sweep (the first sweep: every older version)."""

    def __init__(self, store: StateStore, blobs: BlobStore, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._blobs = blobs
        self._clock = clock
        self._swept_to = 0.0  # versions committed before this moment were swept

    @property
    def pause(self) -> float:
        """Seconds between sweeps: a quarter of the window, between 1 s and 10 minutes."""
        return min(LONGEST_PAUSE, max(1.0, self._store.retention.keep_for / 4))

    async def sweep(self) -> int:
        """Let go of what is no longer kept; how many versions' payloads were looked at."""
        until = self._clock() - self._store.retention.keep_for
        if until <= self._swept_to:
            return 0
        shas = await self._store.committed_between(self._swept_to, until)
        for sha256 in shas:
            await self._blobs.release(sha256, self._store)
        self._swept_to = until
        return len(shas)

    async def run(self) -> None:
        """Sweep for ever (a helper task of the daemon)."""
        while True:
            await self.sweep()
            await asyncio.sleep(self.pause)
