"""From the outbox to the sinks: one loop per sink, per-resource order, retry, dead letters.

Policy, the same for every sink: an acknowledgement marks the delivery done; a temporary failure
is retried with capped, jittered backoff (``Retry-After`` wins); a permanent one, or running out of
``max_attempts`` or ``max_age``, moves it to the dead-letter list. With ``coalesce`` (or when the
outbox holds more than ``max_outbox_bytes``) only the newest pending version of a resource is
delivered; the older ones are recorded as superseded. A failing sink only delays its own
deliveries; polling and the other sinks go on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import structlog

from pollerd.config.base import SinkBase
from pollerd.core.model import Event
from pollerd.core.waiting import wait_set
from pollerd.delivery.acks import Acks
from pollerd.delivery.order import RoundOrder, Settled, expired
from pollerd.delivery.outages import SinkOutages
from pollerd.delivery.settle import Settlement
from pollerd.delivery.slots import RoundResult, Slot
from pollerd.sinks import DeliveryFailed, Sink
from pollerd.sinks.base import GroupSink
from pollerd.store.blobs import BlobStore
from pollerd.store.postgres.leases import Fenced
from pollerd.store.protocol import StateRefused, StateStore
from pollerd.store.rows import PendingDelivery
from pollerd.telemetry.alerts import Alerts
from pollerd.telemetry.metrics import Metrics
from pollerd.telemetry.tasks import TaskHealth, describe, retrying
from pollerd.versions.payload import Payload
from pollerd.versions.readings import Readings
from pollerd.versions.stored import VersionReader

BATCH = 500
IDLE_WAKE = 60.0


class Deliverer:
    """Delivers pending events to every sink, each sink in its own task."""

    def __init__(
        self,
        store: StateStore,
        blobs: BlobStore,
        sinks: dict[str, Sink],
        policies: dict[str, SinkBase],
        metrics: Metrics,
        clock: Callable[[], float] = time.time,
        health: TaskHealth | None = None,
        on_fenced: Callable[[str], Awaitable[None]] | None = None,
        alerts: Alerts | None = None,
        readings: Readings | None = None,
    ) -> None:
        self._store = store
        self._versions = VersionReader(readings or Readings(), blobs.local, asyncio.to_thread)
        self._alerts = alerts or Alerts()
        self.outages = SinkOutages(self._alerts)
        self._settle = Settlement(
            blobs, metrics, self.outages, clock, structlog.get_logger("pollerd.delivery")
        )
        self._fenced: set[str] = set()
        self._on_fenced = on_fenced
        self._blobs = blobs
        # its own table: the daemon's reload (or a lease) changes it through add_sink/remove_sink
        self._slots = {name: Slot(name, sink, policies[name], store) for name, sink in sinks.items()}
        self._metrics = metrics
        self._clock = clock
        self._health = health or TaskHealth(metrics)
        self._stopping = False
        self._flushing = False
        self._stopped: set[str] = set()  # the sinks whose loops ``stop`` ended
        self._started = False
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._log = structlog.get_logger("pollerd.delivery")

    @property
    def pending(self) -> int:
        """Deliveries pending over every sink, as last counted."""
        return sum(slot.pending for slot in self._slots.values())

    def wake(self) -> None:
        """New events are in the outbox."""
        for slot in self._slots.values():
            slot.wake.set()

    def start(self, names: list[str] | None = None) -> None:
        """Start one delivery loop per sink (or only for the sinks named)."""
        self._started = True
        for name in self._slots if names is None else names:
            self._start(name)

    def _start(self, name: str) -> None:
        self._tasks[name] = asyncio.create_task(self._loop(name), name=f"deliver:{name}")

    async def stop(self, grace: float) -> int:
        """Let each sink finish the delivery in flight (and commit its acknowledgement) within
        ``grace`` seconds, start no new one, then cancel what is left; how many were cancelled."""
        self._stopping = True
        self.wake()
        late: set[asyncio.Task[None]] = set()
        if self._tasks:
            _, late = await asyncio.wait(self._tasks.values(), timeout=grace)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late)
        self._stopped = set(self._tasks)
        self._tasks = {}
        return len(late)

    async def flush(self, timeout: float) -> bool:
        """After ``stop``: deliver what is due now (what the last polls committed) within
        ``timeout`` seconds, one sink after another; False if that ran out (what is left stays in
        the outbox for the next start)."""
        if timeout <= 0:
            return not any(self._slots[name].pending for name in self._stopped if name in self._slots)
        self._flushing = True
        try:
            await asyncio.wait_for(self._flush(), timeout)
        except TimeoutError:
            return False
        finally:
            self._flushing = False
        return True

    async def _flush(self) -> None:
        for name in sorted(self._stopped - self._fenced):
            if name not in self._slots:
                continue
            try:
                while (result := await self._round(name)).more and result.delivered:
                    pass
            except Exception as exc:  # (a refused write, a store down): the next start delivers it
                self._log.warning(
                    "could not deliver the last changes before stopping", sink=name, error=describe(exc)
                )

    def add_sink(
        self,
        name: str,
        sink: Sink,
        policy: SinkBase,
        store: StateStore | None = None,
        epoch: int | None = None,
    ) -> None:
        """Deliver to a new (or reconfigured) sink from now on; its pending deliveries resume
        (``store`` and ``epoch``: the state under this sink's lease, where replicas share the work)."""
        self._slots[name] = Slot(name, sink, policy, store or self._store, epoch)
        self._fenced.discard(name)
        if self._started:  # (a daemon whose only sink was replaced has no loop left to go by)
            self._start(name)

    async def remove_sink(self, name: str, grace: float) -> None:
        """Stop delivering to a sink; what it has pending stays in the outbox."""
        task = self._tasks.pop(name, None)
        if task is not None:
            task.cancel()
            await asyncio.wait([task], timeout=grace)
        self._slots.pop(name, None)

    async def drain(self) -> int:
        """Try every pending delivery once, retry schedule or not (``pollerd once``).

        Return how many failed.
        """
        results = await asyncio.gather(*(self._drain_sink(name) for name in self._slots))
        return sum(results)

    async def refresh_depths(self) -> None:
        """Set the outbox gauges from the store."""
        for name in self._slots:
            await self._gauge(name)

    async def _gauge(self, name: str) -> int:
        counts = await self._store_of(name).delivery_counts(name)
        self._slots[name].pending = counts["pending"]
        self._metrics.outbox_depth.labels(name).set(counts["pending"])
        self._metrics.dead_letters.labels(name).set(counts["dead"])
        size = await self._store_of(name).outbox_bytes(name)
        self._metrics.outbox_bytes.labels(name).set(size)
        return size

    async def _drain_sink(self, name: str) -> int:
        failed = 0
        while True:
            result = await self._round(name, ignore_schedule=True)
            failed += result.failed
            if not result.more or result.delivered == 0:
                return failed

    def _store_of(self, name: str) -> StateStore:
        return self._slots[name].store

    async def _loop(self, name: str) -> None:
        """Rounds for ever; a store or sink error costs a retry with backoff, never the loop. A
        refused write (the sink's lease was lost) ends it: another replica delivers now."""
        await retrying(
            self._health,
            f"deliver:{name}",
            lambda: self._pass(name),
            until=lambda: self._stopping or name in self._fenced,
        )

    async def _pass(self, name: str) -> None:
        """One round, then wait for news, a retry that is due, or the idle wake."""
        slot = self._slots[name]
        slot.wake.clear()
        if isinstance(slot.sink, GroupSink) and not self._stopping:
            await asyncio.sleep(slot.sink.group_window)  # what one poll cycle commits goes together
        wake = slot.wake
        try:
            result = await self._round(name)
        except Fenced:
            self._fenced.add(name)
            if self._on_fenced is not None:
                await self._on_fenced(f"sink:{name}")
            return
        self._health.recovered(f"deliver:{name}")
        if result.more and result.delivered:
            return
        timeout = IDLE_WAKE if result.next_due is None else result.next_due - self._clock()
        await wait_set(wake, max(timeout, 0.05))

    async def _round(self, name: str, ignore_schedule: bool = False) -> RoundResult:
        slot = self._slots[name]
        pending = await self._settle.coalesced(slot, await slot.store.pending_deliveries(name, BATCH))
        order = RoundOrder(float("inf") if ignore_schedule else self._clock())
        if isinstance(slot.sink, GroupSink):
            return await self._group_round(name, pending, order)
        acks = Acks(lambda items: self._settle.acknowledge(slot, items))
        delivered = failed = 0
        try:
            for item in pending:
                await acks.due()
                if self._stopping and not (ignore_schedule or self._flushing):
                    break  # shutting down: the delivery in flight finished; start no other
                if not order.may_try(item):
                    continue
                settled = await self._deliver(name, item)
                order.settled(item, settled)
                if settled in (Settled.DELIVERED, Settled.FILTERED):
                    delivered += settled is Settled.DELIVERED
                    await acks.add(item)
                else:
                    failed += 1
        finally:
            await acks.flush()
        await self._gauge(name)
        next_due = order.next_due
        if failed and next_due is None:
            next_due = self._clock() + slot.retry.base / 2
        return RoundResult(delivered, failed, next_due, more=len(pending) == BATCH)

    async def _group_round(self, name: str, pending: list[PendingDelivery], order: RoundOrder) -> RoundResult:
        """A sink that takes a group at once (a chat channel): everything due goes in one call, so
        a burst (or a backlog after the service said wait) becomes one message, not many; while
        one delivery waits for its retry, all wait with it (the group stays in order)."""
        waiting = [item.next_attempt for item in pending if item.next_attempt > order.now]
        if waiting:
            return RoundResult(0, 0, min(waiting), more=False)
        slot, due, views, settled = self._slots[name], [], [], []
        for item in pending:
            too_late = expired(slot.policy, item, self._clock())
            if too_late is not None:
                log = self._log.bind(sink=name, event_id=item.event.event_id)
                await self._settle.dead(slot, item, too_late, log)
                continue
            view = slot.view(item.event)
            if view is None:
                self._metrics.deliveries.labels(name, "filtered").inc()
                settled.append(item)
            else:
                due.append(item)
                views.append(view)
        failed = 0
        if views:
            failed = await self._send_group(name, due, views)
            settled += [] if failed else due
        await self._settle.acknowledge(slot, settled)
        await self._gauge(name)
        next_due = self._clock() + slot.retry.base / 2 if failed else None
        return RoundResult(len(due) - failed, failed, next_due, more=len(pending) == BATCH)

    async def _send_group(self, name: str, items: list[PendingDelivery], views: list[Event]) -> int:
        """Hand the group over; how many failed (all or none)."""
        slot = self._slots[name]
        assert isinstance(slot.sink, GroupSink)
        log = self._log.bind(sink=name, events=len(items))
        started = time.monotonic()
        try:
            await slot.attempts.run(slot.sink.deliver_group(views, slot.epoch))
        except DeliveryFailed as exc:
            for item in items:
                await self._settle.refused(slot, item, exc, log)
            return len(items)
        except Exception as exc:  # a group this sink cannot handle must not block it forever
            log.exception("sink crashed on this group")
            for item in items:
                await self._settle.dead(
                    slot, item, f"the sink could not handle this event: {describe(exc)}", log
                )
            return len(items)
        self._metrics.delivery_seconds.labels(name).observe(time.monotonic() - started)
        self.outages.delivered(name)
        return 0

    async def _deliver(self, name: str, item: PendingDelivery) -> Settled:
        event, slot = item.event, self._slots[name]
        log = self._log.bind(sink=name, source=event.source, resource=event.resource, event_id=event.event_id)
        too_late = expired(slot.policy, item, self._clock())
        if too_late is not None:
            await self._settle.dead(slot, item, too_late, log)
            return Settled.DEAD
        view = slot.view(event)
        if view is None:
            self._metrics.deliveries.labels(name, "filtered").inc()
            return Settled.FILTERED
        started = time.monotonic()
        payload = Payload.stored(self._versions, event.sha256, self._blobs.tmp_dir)
        try:
            await slot.attempts.run(slot.sink.deliver(view, payload, slot.epoch))
        except DeliveryFailed as exc:
            return await self._settle.refused(slot, item, exc, log)
        except StateRefused:  # the payload could not be read from the state now: the round fails
            raise
        except Exception as exc:  # a payload this sink cannot handle must not block it forever
            log.exception("sink crashed on this event")
            await self._settle.dead(slot, item, f"the sink could not handle this event: {describe(exc)}", log)
            return Settled.DEAD
        finally:
            await payload.close()
        self._metrics.delivery_seconds.labels(name).observe(time.monotonic() - started)
        self.outages.delivered(name)
        return Settled.DELIVERED
