"""From the outbox to the sinks: one loop per sink, per-resource order, retry with backoff.

A failing sink only delays its own deliveries; polling and the other sinks go on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from pollerd.backoff import Backoff
from pollerd.blobs import BlobStore
from pollerd.metrics import Metrics
from pollerd.sinks import DeliveryFailed, Sink
from pollerd.state import PendingDelivery, StateStore
from pollerd.waiting import wait_set

BATCH = 500
IDLE_WAKE = 60.0


@dataclass(frozen=True)
class RoundResult:
    """What one pass over a sink's pending deliveries did."""

    delivered: int
    failed: int
    next_due: float | None  # the earliest retry that is still waiting
    more: bool  # the batch was full: there may be more to do at once


class Deliverer:
    """Delivers pending events to every sink, each sink in its own task."""

    def __init__(
        self,
        store: StateStore,
        blobs: BlobStore,
        sinks: dict[str, Sink],
        retry: dict[str, Backoff],
        metrics: Metrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._blobs = blobs
        self._sinks = sinks
        self._retry = retry
        self._metrics = metrics
        self._clock = clock
        self._wake = {name: asyncio.Event() for name in sinks}
        self._tasks: list[asyncio.Task[None]] = []
        self._log = structlog.get_logger("pollerd.delivery")

    def wake(self) -> None:
        """New events are in the outbox."""
        for event in self._wake.values():
            event.set()

    def start(self) -> None:
        """Start one delivery loop per sink."""
        self._tasks = [asyncio.create_task(self._loop(name), name=f"deliver:{name}")
                       for name in self._sinks]

    async def stop(self, grace: float) -> None:
        """Let in-flight deliveries finish for up to ``grace`` seconds, then cancel them."""
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=grace)
        self._tasks = []

    async def drain(self) -> int:
        """Try every pending delivery once, retry schedule or not (``pollerd once``).

        Return how many failed.
        """
        results = await asyncio.gather(*(self._drain_sink(name) for name in self._sinks))
        return sum(results)

    async def refresh_depths(self) -> None:
        """Set the outbox depth gauges from the store."""
        for name in self._sinks:
            depth = await self._store.outbox_depth(name)
            self._metrics.outbox_depth.labels(name).set(depth)

    async def _drain_sink(self, name: str) -> int:
        failed = 0
        while True:
            result = await self._round(name, ignore_schedule=True)
            failed += result.failed
            if not result.more or result.delivered == 0:
                return failed

    async def _loop(self, name: str) -> None:
        wake = self._wake[name]
        while True:
            wake.clear()
            result = await self._round(name)
            if result.more and result.delivered:
                continue
            timeout = IDLE_WAKE if result.next_due is None else result.next_due - self._clock()
            await wait_set(wake, max(timeout, 0.05))

    async def _round(self, name: str, ignore_schedule: bool = False) -> RoundResult:
        pending = await self._store.pending_deliveries(name, BATCH)
        now = float("inf") if ignore_schedule else self._clock()
        blocked: set[tuple[str, str]] = set()
        delivered = failed = 0
        next_due: float | None = None
        for item in pending:
            key = (item.event.source, item.event.resource)
            if key in blocked:
                continue
            if item.next_attempt > now:
                blocked.add(key)  # a later version must not overtake this one
                next_due = item.next_attempt if next_due is None else min(next_due, item.next_attempt)
                continue
            if await self._deliver(name, item):
                delivered += 1
            else:
                failed += 1
                blocked.add(key)
        self._metrics.outbox_depth.labels(name).set(await self._store.outbox_depth(name))
        if failed and next_due is None:
            next_due = self._clock() + self._retry[name].base / 2
        return RoundResult(delivered, failed, next_due, more=len(pending) == BATCH)

    async def _deliver(self, name: str, item: PendingDelivery) -> bool:
        event = item.event
        log = self._log.bind(sink=name, source=event.source, resource=event.resource,
                             event_id=event.event_id)
        try:
            await self._sinks[name].deliver(event, self._blobs.path(event.sha256))
        except DeliveryFailed as exc:
            await self._retry_later(name, item, str(exc), exc.retry_after, log)
            return False
        except Exception as exc:  # a sink bug must not stop delivery to the others
            log.exception("sink crashed")
            await self._retry_later(name, item, f"internal: {type(exc).__name__}", None, log)
            return False
        await asyncio.shield(self._store.mark_delivered(event.event_id, name))
        self._metrics.deliveries.labels(name, "delivered").inc()
        await self._blobs.release(event.sha256, self._store)
        return True

    async def _retry_later(
        self,
        name: str,
        item: PendingDelivery,
        error: str,
        retry_after: float | None,
        log: structlog.stdlib.BoundLogger,
    ) -> None:
        delay = self._retry[name].delay(item.attempts + 1, retry_after)
        await asyncio.shield(self._store.mark_retry(item.event.event_id, name, error,
                                                    self._clock() + delay))
        self._metrics.deliveries.labels(name, "failed").inc()
        log.warning("delivery failed", error=error, attempt=item.attempts + 1,
                    retry_in=round(delay, 2))
