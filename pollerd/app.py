"""The composition root: builds every part from the config, owns start and stop order."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import structlog

from pollerd import PROJECT_URL, __version__
from pollerd.blobs import BlobStore
from pollerd.config import Config, SourceConfig
from pollerd.config_ap import ApSourceConfig
from pollerd.config_dc import DcSourceConfig
from pollerd.context import PollContext
from pollerd.delivery import Deliverer
from pollerd.fetch import HttpClient, Limits
from pollerd.health import Health, default_stall_after
from pollerd.metrics import Metrics
from pollerd.poller import Poller, PollReport, SourcePoller
from pollerd.quota import QuotaBudgets
from pollerd.scheduler import PollScheduler
from pollerd.server import OpsServer
from pollerd.sinks import Sink, build_sink
from pollerd.sources import build_source
from pollerd.sources.ap import ApPoller
from pollerd.sources.democracyclub import DcPoller
from pollerd.state import SqliteStore
from pollerd.status_page import snapshot
from pollerd.systemd import Notifier, watchdog_interval

DEFAULT_USER_AGENT = f"pollerd/{__version__} (+{PROJECT_URL})"


class StartupError(Exception):
    """The daemon cannot start (a port in use, a state directory it cannot write)."""


class Daemon:
    """One pollerd instance. Constructing it does no I/O; ``open`` does, ``close`` undoes it."""

    def __init__(self, config: Config, metrics: Metrics | None = None) -> None:
        self.config = config
        self.metrics = metrics or Metrics()
        state_dir = config.daemon.state_dir
        self.store = SqliteStore(state_dir / "pollerd.sqlite3")
        self.blobs = BlobStore(state_dir)
        self.user_agent = config.daemon.user_agent or DEFAULT_USER_AGENT
        self.sinks: dict[str, Sink] = {s.name: build_sink(s, state_dir, self.user_agent)
                                       for s in config.sinks}
        self.deliverer = Deliverer(self.store, self.blobs, self.sinks,
                                   {s.name: s for s in config.sinks}, self.metrics)
        self.pollers: dict[str, Poller] = {}
        self.scheduler = PollScheduler(self.metrics)
        stall_after = config.daemon.stall_after or default_stall_after(
            [s.interval for s in config.sources])
        self.health = Health(self.scheduler, stall_after)
        self.notifier = Notifier()
        self.server: OpsServer | None = None
        self._opened_at: float | None = None
        self._session: aiohttp.ClientSession | None = None
        self._polls: set[asyncio.Task[PollReport]] = set()
        self._log = structlog.get_logger("pollerd")

    async def open(self) -> None:
        """Open state, the HTTP session and the pollers (loads stored state)."""
        try:
            await self.store.open()
        except (OSError, sqlite3.Error) as exc:
            raise StartupError(f"daemon.state_dir: cannot open {self.store.path}: {exc}") from None
        await asyncio.to_thread(self.blobs.prepare)
        daemon = self.config.daemon
        self._session = aiohttp.ClientSession(
            headers={"User-Agent": self.user_agent},
            connector=aiohttp.TCPConnector(limit=0),
        )
        client = HttpClient(self._session, Limits(daemon.max_concurrency, daemon.max_per_host),
                            self.metrics, self.blobs.tmp_dir)
        budgets = QuotaBudgets()
        context = PollContext(client, self.store, self.blobs, self.metrics, self.deliverer.wake)
        for source_config in self.config.sources:
            poller = self._poller(source_config, context, budgets)
            await poller.load()
            self.pollers[source_config.name] = poller
        self.metrics.initialise(self.pollers, self.sinks)
        await self.deliverer.refresh_depths()
        self._opened_at = time.monotonic()

    @staticmethod
    def _poller(config: SourceConfig, context: PollContext, budgets: QuotaBudgets) -> Poller:
        if isinstance(config, ApSourceConfig):
            assert config.api_key is not None
            budget = budgets.for_key(config.api_key.get_secret_value(), config.quota_per_minute)
            return ApPoller(config, context, budget)
        if isinstance(config, DcSourceConfig):
            return DcPoller(config, context, budgets)
        return SourcePoller(config, build_source(config, context.client), context)

    async def run_once(self) -> bool:
        """One cycle of every source, then every pending delivery once; True if all went well."""
        reports = await asyncio.gather(*(p.poll() for p in self.pollers.values()))
        failed_deliveries = await self.deliverer.drain()
        for name, report in zip(self.pollers, reports, strict=True):
            self._log.info("cycle", source=name, changed=report.changed,
                           unchanged=report.unchanged, errors=report.errors)
        return all(r.ok for r in reports) and failed_deliveries == 0

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set, then drain within ``drain_grace``.

        Tells systemd READY=1 once listening and scheduled, WATCHDOG=1 while polls make progress,
        STOPPING=1 on the way out.
        """
        address = self.config.daemon.metrics
        if address:
            self.server = OpsServer(self.metrics, address, self.health.problem, self.readiness,
                                    self.status)
            try:
                await self.server.start()
            except OSError as exc:
                raise StartupError(f"daemon.metrics: cannot listen on {address}: "
                                   f"{exc.strerror}") from None
            self._log.info("http endpoints listening", port=self.server.port)
        self.deliverer.start()
        for name, poller in self.pollers.items():
            cfg = poller.config
            self.scheduler.add(name, cfg.interval, cfg.jitter, self._tracked(poller.poll))
        self.scheduler.start()
        helpers = [asyncio.create_task(self.health.heartbeat(), name="heartbeat")]
        interval = watchdog_interval()
        if interval is not None:
            helpers.append(asyncio.create_task(self._watchdog(interval), name="watchdog"))
        self.notifier.send("READY=1", f"STATUS={self._summary()}")
        self._log.info("started", sources=list(self.pollers), sinks=list(self.sinks))
        await stop.wait()
        self.notifier.send("STOPPING=1", "STATUS=stopping: draining polls and deliveries")
        self._log.info("stopping")
        for helper in helpers:
            helper.cancel()
        await self._drain()

    def readiness(self) -> str | None:
        """Why the daemon is not ready, or None: state open, and every source discovered at
        least once unless it is still within ``startup_grace``."""
        if self._opened_at is None:
            return "the state directory is not open"
        if time.monotonic() - self._opened_at <= self.config.daemon.startup_grace:
            return None
        waiting = [name for name, poller in self.pollers.items() if not poller.ready]
        return f"never discovered: {', '.join(waiting)}" if waiting else None

    async def status(self) -> dict[str, Any]:
        """The data of ``/status`` and ``/status.json``."""
        return await snapshot(self.pollers, self.scheduler, self.store, list(self.config.sinks),
                              self.metrics)

    async def _watchdog(self, interval: float) -> None:
        """WATCHDOG=1 every ``interval`` seconds, only while polls make progress."""
        withheld = False
        while True:
            await asyncio.sleep(interval)
            problem = self.health.problem()
            if problem is None:
                self.notifier.send("WATCHDOG=1", f"STATUS={self._summary()}")
                withheld = False
            elif not withheld:
                self._log.error("withholding the systemd watchdog", reason=problem)
                self.notifier.send(f"STATUS=unhealthy: {problem}")
                withheld = True

    def _summary(self) -> str:
        registry = self.metrics.registry
        changes = sum(registry.get_sample_value("pollerd_changes_total", {"source": name}) or 0
                      for name in self.pollers)
        pending = sum(registry.get_sample_value("pollerd_outbox_depth", {"sink": name}) or 0
                      for name in self.sinks)
        return (f"{len(self.pollers)} sources, {len(self.sinks)} sinks, {changes:.0f} changes, "
                f"{pending:.0f} deliveries pending")

    def _tracked(self, poll: Callable[[], Awaitable[PollReport]]) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            task = asyncio.ensure_future(poll())
            self._polls.add(task)
            try:
                await task
            finally:
                self._polls.discard(task)
        return run

    async def _drain(self) -> None:
        grace = self.config.daemon.drain_grace
        self.scheduler.shutdown()
        if self._polls:
            _, late = await asyncio.wait(set(self._polls), timeout=grace)
            for task in late:
                task.cancel()
            if late:
                self._log.warning("abandoned polls at shutdown", count=len(late))
        await self.deliverer.stop(grace)

    async def close(self) -> None:
        """Release everything in reverse order of opening; a failing close does not stop the rest."""
        closers: list[tuple[str, Callable[[], Awaitable[None]]]] = []
        if self.server is not None:
            closers.append(("http endpoints", self.server.stop))
        closers += [(f"sink {name}", sink.close) for name, sink in self.sinks.items()]
        if self._session is not None:
            closers.append(("http session", self._session.close))
        closers.append(("state store", self.store.close))
        self.notifier.close()
        for what, close in closers:
            try:
                await close()
            except Exception:
                self._log.exception("close failed", what=what)


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT (for the running loop)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop
