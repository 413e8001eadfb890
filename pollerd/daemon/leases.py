"""Sharing the work between replicas on PostgreSQL: this replica's share of the leases.

Every replica loads the same config. The work comes in leases: one per sink, and one per group of
sources that must run together (the sources that spend one AP key's quota, or the Democracy Club
hosts' budgets, share a lease, so two replicas never spend one budget twice; any other source is a
lease of its own). Every ``ttl / 3`` the keeper beats, renews what it holds, gives back what is
beyond its fair share (so a new replica gets work), and takes free or expired leases up to it.
A lease that cannot be renewed is dropped at once: its work stops before another replica's starts.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections.abc import Awaitable, Callable

import structlog

from pollerd.config import Config
from pollerd.config.ap import ApSourceConfig
from pollerd.config.dc import DcSourceConfig
from pollerd.store.postgres import leases as pg_leases
from pollerd.store.postgres.leases import Fence
from pollerd.store.postgres.store import PgStore
from pollerd.store.protocol import StateRefused
from pollerd.telemetry.metrics import Metrics

Gained = Callable[[Fence], Awaitable[None]]
Lost = Callable[[str, str], Awaitable[None]]


def lease_groups(config: Config) -> dict[str, list[str]]:
    """Lease name -> the sources or sink it covers (``source:``/``sink:`` names)."""
    groups: dict[str, list[str]] = {}
    for source in config.sources:
        if isinstance(source, ApSourceConfig) and source.api_key is not None:
            key = hashlib.sha256(source.api_key.get_secret_value().encode()).hexdigest()[:12]
            name = f"ap-key:{key}"  # a digest: the key itself never leaves the process
        elif isinstance(source, DcSourceConfig):
            name = "democracyclub"
        else:
            name = f"source:{source.name}"
        groups.setdefault(name, []).append(source.name)
    for sink in config.sinks:
        groups[f"sink:{sink.name}"] = [sink.name]
    return groups


class LeaseKeeper:
    """Holds this replica's fair share of ``names``; ``gained`` and ``lost`` start and stop the work."""

    def __init__(
        self,
        store: PgStore,
        replica: str,
        ttl: float,
        metrics: Metrics,
        gained: Gained,
        lost: Lost,
        beat: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.replica = replica
        self.beat = beat  # after every round: what else the replica says to the others
        self.ttl = ttl
        self.names: list[str] = []
        self.held: dict[str, Fence] = {}
        self._store = store
        self._metrics = metrics
        self._gained = gained
        self._lost = lost
        self._renewed_at = time.monotonic()
        self._released: list[Fence] = []  # dropped, to give back (harmless if already lost)
        self._log = structlog.get_logger("pollerd.leases").bind(replica=replica)

    async def run(self) -> None:
        """Keep the share until cancelled; a database outage drops every lease once ``ttl`` passed
        without a renewal (nothing this replica does then could be committed anyway)."""
        while True:
            try:
                await self.tick()
            except StateRefused as exc:
                if self.held and time.monotonic() - self._renewed_at > self.ttl:
                    await self._drop(list(self.held), f"leases not renewed for {self.ttl:g}s: {exc}")
            await asyncio.sleep(self.ttl / 3)

    async def tick(self) -> None:
        """One round: beat, renew, rebalance, take."""
        live = await self._store.run_leases(pg_leases.heartbeat, self.replica, self.ttl)
        renewed = await self._store.run_leases(pg_leases.renew, list(self.held.values()), self.ttl)
        self._renewed_at = time.monotonic()
        await self._drop([n for n in self.held if n not in renewed], "taken over by another replica")
        self._released = []
        gone = [n for n in self.held if n not in self.names]
        fair = math.ceil(len(self.names) / live)
        extra = sorted(set(self.held) - set(gone), key=self._preference)[fair:]
        if gone or extra:  # the work stops first, then the leases go back for others to take
            await self._drop(gone + extra, f"rebalanced: {fair} of {len(self.names)} for {live} replicas")
            await self._store.run_leases(pg_leases.release, self._released)
            self._released = []
        for name in sorted(set(self.names) - set(self.held), key=self._preference):
            if len(self.held) >= fair:
                break
            fence = await self._store.run_leases(pg_leases.acquire, name, self.replica, self.ttl)
            if fence is not None:
                await self._gain(fence)
        if self.beat is not None:
            await self.beat()

    async def fenced(self, name: str) -> None:
        """A write under ``name`` was refused: the lease is gone; stop its work now."""
        if name in self.held:
            self._metrics.fenced_writes.labels(name).inc()
            await self._drop([name], "a write was refused: the lease was lost")

    async def release_all(self, why: str = "stopping") -> None:
        """Stop every lease's work and give them back at once, and leave the replicas' count."""
        self._released = []
        await self._drop(list(self.held), why)
        await self._store.run_leases(pg_leases.release, self._released)
        self._released = []
        await self._store.run_leases(pg_leases.leave, self.replica)

    async def _gain(self, fence: Fence) -> None:
        self.held[fence.name] = fence
        self._metrics.leases_held.labels(fence.name).set(1)
        if fence.epoch > 1:
            self._metrics.lease_takeovers.labels(fence.name).inc()
        self._log.info("lease taken", lease=fence.name, epoch=fence.epoch)
        try:
            await self._gained(fence)
        except StateRefused as exc:  # the database went away before the work could start
            await self._drop([fence.name], f"its work could not start: {exc}")
            raise

    async def _drop(self, names: list[str], why: str) -> None:
        """Stop the work of these leases (they are no longer held, or about to be released)."""
        for name in names:
            fence = self.held.pop(name, None)
            if fence is None:
                continue
            self._released.append(fence)
            self._metrics.leases_held.labels(name).set(0)
            self._log.warning("lease dropped: its work stops here", lease=name, epoch=fence.epoch, why=why)
            await self._lost(name, why)

    def _preference(self, name: str) -> str:
        """An order of the leases that differs between replicas, so they reach for different ones."""
        return hashlib.sha256(f"{self.replica}\0{name}".encode()).hexdigest()
