"""A replica's part of the work on PostgreSQL: what it polls and delivers is what it holds a
lease for. Gaining a lease builds the pollers of its sources (their state read from the database,
as the last holder left it) or starts delivering to its sink, every write fenced by the lease;
losing it stops that work at once."""

from __future__ import annotations

import dataclasses
import os
import socket
import uuid
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

import structlog

from pollerd.config import Config
from pollerd.daemon.leases import LeaseKeeper, lease_groups
from pollerd.daemon.poll_runs import PollRuns
from pollerd.delivery.deliverer import Deliverer
from pollerd.polling.budget_plan import plan_budgets
from pollerd.polling.context import PollContext
from pollerd.polling.poller import Poller
from pollerd.sinks import Sink
from pollerd.sources import SourceKind, build_poller
from pollerd.store.postgres import leases as pg_leases
from pollerd.store.postgres import spends as pg_spends
from pollerd.store.postgres.leases import Fence
from pollerd.store.postgres.store import PgStore
from pollerd.store.protocol import StateRefused
from pollerd.telemetry.metrics import Metrics
from pollerd.telemetry.tasks import TaskHealth, retrying


def replica_name(configured: str | None) -> str:
    """``[daemon] replica``, or this host's name and pid."""
    return configured or f"{socket.gethostname()}-{os.getpid()}"


@dataclasses.dataclass
class SharedWork:
    """Starts and stops this replica's work as its leases come and go."""

    store: PgStore
    config: Callable[[], Config]
    context: PollContext
    kinds: Mapping[str, SourceKind]
    pollers: dict[str, Poller]
    sinks: dict[str, Sink]
    runs: PollRuns
    deliverer: Deliverer
    metrics: Metrics
    scheduling: bool = False  # the daemon runs (not ``once``): pollers gained are scheduled

    def __post_init__(self) -> None:
        daemon = self.config().daemon
        self.keeper = LeaseKeeper(
            self.store,
            replica_name(daemon.replica),
            daemon.lease_ttl,
            self.metrics,
            self._gained,
            self._lost,
            beat=self.share_spends,
        )
        self.spender = uuid.uuid4().hex  # this process: a restarted replica's spends are others'
        self.groups: dict[str, list[str]] = {}
        self.configure()
        self._log = structlog.get_logger("pollerd.leases")

    def configure(self) -> None:
        """The leases the config makes (again, after a reload)."""
        self.groups = lease_groups(self.config())
        self.keeper.names = sorted(self.groups)
        self.metrics.initialise_leases(self.groups)

    def lease_of(self, source: str) -> str | None:
        """The lease a source's work runs under (None: the source is no longer configured)."""
        for name, members in self.groups.items():
            if not name.startswith("sink:") and source in members:
                return name
        return None

    def helpers(self, tasks: TaskHealth, wake: Callable[[], None]) -> dict[str, Coroutine[Any, Any, None]]:
        """The replica's long-running tasks (the daemon runs): the leases, and the notices of
        changes committed on any replica (``wake``: the delivery loops)."""
        self.scheduling = True
        return {
            "leases": self.keeper.run(),
            "listen": retrying(tasks, "listen", lambda: self.store.listen(wake)),
        }

    async def status(self) -> dict[str, Any]:
        """For ``/status``: this replica, and who holds which lease since when."""
        rows = await self.store.run(pg_leases.leases)
        return {"replica": self.keeper.replica, "leases": [dataclasses.asdict(row) for row in rows]}

    async def give_back(self, why: str) -> None:
        """Stop all the work and give the leases back at once (a clean stop, a reload), so other
        replicas take over now."""
        try:
            await self.keeper.release_all(why)
        except StateRefused as exc:  # they expire by themselves within lease_ttl
            self._log.warning("could not give the leases back", error=str(exc))

    async def _gained(self, fence: Fence) -> None:
        store = self.store.with_fence(fence)
        config = self.config()
        if fence.name.startswith("sink:"):
            name = fence.name.removeprefix("sink:")
            policy = next(s for s in config.sinks if s.name == name)
            self.deliverer.add_sink(name, self.sinks[name], policy, store, fence.epoch)
            return
        context = dataclasses.replace(self.context, store=store)
        fits = plan_budgets(config.sources)
        gained = []
        for source in config.sources:
            if source.name in self.groups[fence.name]:
                poller = build_poller(source, context, self.kinds)
                await poller.load()
                poller.fit = fits.get(source.name)
                gained.append(poller)
        spent = await self.store.run(pg_spends.spent_elsewhere, self.spender)
        self.context.budgets.spent_elsewhere(spent)  # before the first request of the new holder
        for poller in gained:
            self.pollers[poller.name] = poller
            if self.scheduling:
                self.runs.schedule(poller)

    async def _lost(self, lease: str, why: str) -> None:
        if lease.startswith("sink:"):
            await self.deliverer.remove_sink(lease.removeprefix("sink:"), 0.0)
            return
        for source in self.groups.get(lease, []):
            if source in self.pollers:
                await self.runs.unschedule(source, 0.0)
                del self.pollers[source]
        await self.share_spends()  # before the lease is given back: the next holder counts them

    async def share_spends(self) -> None:
        """Tell the other replicas which requests this one made from shared budgets (kept for
        the next time when the database cannot be reached)."""
        spent = self.context.budgets.unshared()
        if not spent:
            return
        try:
            await self.store.run(pg_spends.share, self.spender, spent)
        except StateRefused:
            self.context.budgets.not_shared(spent)
