"""Recording what became of each delivery: acknowledged (or left out by the sink's filters),
retried later, dead-lettered, or superseded by a newer version; the payloads let go once nothing
needs them, and the sink's outage told (``SinkOutages``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from pollerd.delivery.order import Settled, newest_per_resource
from pollerd.delivery.outages import SinkOutages
from pollerd.delivery.slots import Slot
from pollerd.sinks import DeliveryFailed
from pollerd.store.blobs import BlobStore
from pollerd.store.rows import PendingDelivery
from pollerd.telemetry.metrics import Metrics


class Settlement:
    """Settles deliveries in the sink's state (writes shielded: a cancelled round never leaves
    one half-recorded)."""

    def __init__(
        self,
        blobs: BlobStore,
        metrics: Metrics,
        outages: SinkOutages,
        clock: Callable[[], float],
        log: structlog.stdlib.BoundLogger,
    ) -> None:
        self._blobs = blobs
        self._metrics = metrics
        self._outages = outages
        self._clock = clock
        self._log = log

    async def coalesced(self, slot: Slot, pending: list[PendingDelivery]) -> list[PendingDelivery]:
        """With coalescing on (or the outbox over its byte limit): the newest version per resource;
        the others are recorded as superseded."""
        policy = slot.policy
        limit = policy.max_outbox_bytes
        over = limit is not None and await slot.store.outbox_bytes(slot.name) > limit
        if not (policy.coalesce or over):
            return pending
        keep, superseded = newest_per_resource(pending)
        if superseded:
            if over and not policy.coalesce:
                self._log.warning(
                    "outbox over max_outbox_bytes: delivering only the newest version of each resource",
                    sink=slot.name,
                    superseded=len(superseded),
                )
            await asyncio.shield(
                slot.store.mark_superseded([item.event.event_id for item in superseded], slot.name)
            )
            self._metrics.deliveries.labels(slot.name, "superseded").inc(len(superseded))
            await self._release(slot, superseded)
        return keep

    async def refused(
        self, slot: Slot, item: PendingDelivery, exc: DeliveryFailed, log: structlog.stdlib.BoundLogger
    ) -> Settled:
        """The sink said no: dead-lettered when that is final (or attempts ran out), else retried."""
        limit = slot.policy.max_attempts
        if exc.permanent or (limit is not None and item.attempts + 1 >= limit):
            await self.dead(slot, item, str(exc), log)
            return Settled.DEAD
        await self.retry_later(slot, item, str(exc), exc.retry_after, log)
        return Settled.RETRY

    async def acknowledge(self, slot: Slot, items: list[PendingDelivery]) -> None:
        """Commit the sink's acknowledgements together, then let go of their payloads."""
        if not items:
            return
        sent = [i.event.event_id for i in items if slot.view(i.event) is not None]
        left_out = [i.event.event_id for i in items if slot.view(i.event) is None]
        store = slot.store
        if sent:
            await asyncio.shield(store.mark_delivered(sent, slot.name))
        if left_out:
            await asyncio.shield(store.mark_filtered(left_out, slot.name))
        self._metrics.deliveries.labels(slot.name, "delivered").inc(len(sent))
        await self._release(slot, items)

    async def _release(self, slot: Slot, items: list[PendingDelivery]) -> None:
        """Let go of the payloads nothing needs any more (those still kept for redelivery wait
        for the retention's sweep)."""
        for sha256, item in {i.event.sha256: i for i in items}.items():
            if not slot.store.retention.keeps(item.event.detected_at.timestamp()):
                await self._blobs.release(sha256, slot.store)

    async def dead(
        self, slot: Slot, item: PendingDelivery, error: str, log: structlog.stdlib.BoundLogger
    ) -> None:
        await asyncio.shield(slot.store.mark_dead(item.event.event_id, slot.name, error))
        self._metrics.deliveries.labels(slot.name, "dead").inc()
        log.error(
            "delivery dead-lettered (pollerd redeliver sends it again)",
            error=error,
            attempts=item.attempts + 1,
        )
        self._outages.failed(slot.name, _what(item), error, dead=True)

    async def retry_later(
        self,
        slot: Slot,
        item: PendingDelivery,
        error: str,
        retry_after: float | None,
        log: structlog.stdlib.BoundLogger,
    ) -> None:
        delay = slot.retry.delay(item.attempts + 1, retry_after)
        await asyncio.shield(
            slot.store.mark_retry(item.event.event_id, slot.name, error, self._clock() + delay)
        )
        self._metrics.deliveries.labels(slot.name, "failed").inc()
        self._outages.failed(slot.name, _what(item), error, dead=False)
        log.warning("delivery failed", error=error, attempt=item.attempts + 1, retry_in=round(delay, 2))


def _what(item: PendingDelivery) -> str:
    """A delivery in an alert: ``source/resource #sequence``."""
    return f"{item.event.source}/{item.event.resource} #{item.event.sequence}"
