"""The composition root: builds every part from the config, owns start and stop order."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import structlog

from pollerd import PROJECT_URL, __version__
from pollerd.config import Config, SourceConfig
from pollerd.core.masking import MASKED
from pollerd.daemon import desk_work, handoff
from pollerd.daemon.collector import Collector
from pollerd.daemon.desk_page import DeskPage
from pollerd.daemon.health import Health, default_stall_after
from pollerd.daemon.poll_runs import PollRuns
from pollerd.daemon.reload import Reloader
from pollerd.daemon.retention import RetentionSweep
from pollerd.daemon.scheduler import PollScheduler
from pollerd.daemon.server import OpsServer
from pollerd.daemon.state_open import StartupError, open_state, state_for
from pollerd.daemon.status_page import StateSince, snapshot
from pollerd.daemon.systemd import Notifier, watchdog, watchdog_interval
from pollerd.delivery.deliverer import Deliverer
from pollerd.desk.board import desk_board
from pollerd.polling.answers import Limits
from pollerd.polling.budget_plan import plan_budgets
from pollerd.polling.context import PollContext
from pollerd.polling.fetch import HttpClient
from pollerd.polling.poller import Poller
from pollerd.record.answer_log import Recordings
from pollerd.sinks import Sink, build_sink
from pollerd.sources import SOURCE_KINDS, SourceKind, build_poller
from pollerd.store.lock import StateLock
from pollerd.store.redeliver import redeliver_in, redeliver_in_database
from pollerd.store.sqlite.store import SqliteStore
from pollerd.telemetry.alerts import Alerts
from pollerd.telemetry.metrics import Metrics
from pollerd.telemetry.tasks import TaskHealth, retrying
from pollerd.versions.readings import Readings

if TYPE_CHECKING:  # PostgreSQL's parts (psycopg) are loaded only with [daemon] database
    from pollerd.daemon.shared_work import SharedWork

GAUGES_EVERY = 5.0  # seconds between readings of the outbox's depth from the state
DEFAULT_USER_AGENT = f"pollerd/{__version__} (+{PROJECT_URL})"


class Daemon:
    """One pollerd instance. Constructing it does no I/O; ``open`` does, ``close`` undoes it."""

    def __init__(
        self, config: Config, metrics: Metrics | None = None, kinds: Mapping[str, SourceKind] = SOURCE_KINDS
    ) -> None:
        self.config = config
        self.kinds = kinds
        self.metrics = metrics or Metrics()
        state_dir = config.daemon.state_dir
        self.lock = StateLock(state_dir)
        self.store, self.blobs = state_for(config.daemon)
        self.store.retention.keep_for = config.daemon.redeliver_keep
        self.user_agent = config.daemon.user_agent or DEFAULT_USER_AGENT
        self.sinks: dict[str, Sink] = {
            s.name: build_sink(s, state_dir, self.user_agent) for s in config.sinks
        }
        self.tasks = TaskHealth(self.metrics)
        self.alerts = Alerts(lambda: self.sinks.values())
        self.shared: SharedWork | None = None  # with database: the work this replica holds leases for
        replicas = not isinstance(self.store, SqliteStore)
        self.readings = Readings()  # each version's reading, from its poll to its sinks
        self.deliverer = Deliverer(
            self.store,
            self.blobs,
            {} if replicas else self.sinks,  # replicas: each sink once its lease is held
            {s.name: s for s in config.sinks},
            self.metrics,
            health=self.tasks,
            on_fenced=self._fenced,
            alerts=self.alerts,
            readings=self.readings,
        )
        self.pollers: dict[str, Poller] = {}
        self.scheduler = PollScheduler(self.metrics)
        self.collector = Collector()
        self.runs = PollRuns(
            self.scheduler,
            self.tasks,
            on_fenced=self._source_fenced,
            after_cycle=lambda: self.collector.cycle_over(idle=self.deliverer.pending == 0),
        )
        stall_after = config.daemon.stall_after or default_stall_after([s.interval for s in config.sources])
        self.health = Health(self.scheduler, stall_after, tasks=self.tasks)
        self.notifier = Notifier()
        self.server: OpsServer | None = None
        self._opened_at: float | None = None
        self.state_lost: str | None = None  # evidence that the state was lost, said until restart
        self._since = StateSince()  # since when each source and sink is in its state (/status)
        self._session: aiohttp.ClientSession | None = None
        self.recordings = Recordings()
        self._context: PollContext | None = None
        self._reloader = Reloader(self)
        self._log = structlog.get_logger("pollerd")

    async def open(self) -> None:
        """Take the state lock, open state, the HTTP session and the pollers (loads stored state).

        StateLocked when another process writes to the same state directory."""
        self.state_lost = await open_state(self.lock, self.store, self.blobs, self.config)
        await asyncio.to_thread(self.blobs.prepare)
        daemon = self.config.daemon
        self._session = aiohttp.ClientSession(
            headers={"User-Agent": self.user_agent},
            connector=aiohttp.TCPConnector(limit=0),
        )
        await self.recordings.configure(daemon.record, daemon.state_dir, self.config.sources)
        client = HttpClient(
            self._session,
            Limits(daemon.max_concurrency, daemon.max_per_host),
            self.blobs.tmp_dir,
            self.recordings,
        )
        self._context = PollContext(
            client,
            self.store,
            self.blobs,
            self.metrics,
            self.deliverer.wake,
            alerts=self.alerts,
            readings=self.readings,
        )
        if not isinstance(self.store, SqliteStore):
            from pollerd.daemon.shared_work import SharedWork  # with PostgreSQL only: psycopg

            self.shared = SharedWork(
                self.store,
                lambda: self.config,
                self._context,
                self.kinds,
                self.pollers,
                self.sinks,
                self.runs,
                self.deliverer,
                self.metrics,
            )
        else:
            for source_config in self.config.sources:
                self.pollers[source_config.name] = await self.poller(source_config)
        self.plan_budgets()
        self.initialise_metrics()
        await self.deliverer.refresh_depths()
        self.collector.start()
        self._opened_at = time.monotonic()

    async def poller(self, config: SourceConfig) -> Poller:
        """The source's poller, its stored state loaded (a changed source's is read back)."""
        assert self._context is not None
        poller = build_poller(config, self._context, self.kinds)
        await poller.load()
        return poller

    def plan_budgets(self) -> None:
        """Give each budgeted poller its share; say which schedules do not fit their budget."""
        for name, fit in plan_budgets(self.config.sources).items():
            if name in self.pollers:
                self.pollers[name].fit = fit
            if fit.limited:
                self._log.warning(
                    "the schedule does not fit the request budget; polling will be spread to fit it",
                    plan=fit.words(),
                )

    def initialise_metrics(self) -> None:
        self.metrics.initialise([s.name for s in self.config.sources], self.sinks)
        for source in self.config.sources:
            self.metrics.source_interval.labels(source.name).set(source.interval)

    async def run_once(self) -> bool:
        """One cycle of every source, then every pending delivery once; True if all went well.
        With replicas: of the sources and sinks no running replica holds (leases taken for the
        cycle and given back)."""
        if self.shared is not None:
            await self.shared.keeper.tick()
            try:
                return await self._cycle()
            finally:
                await self.shared.keeper.release_all("the cycle is over")
        return await self._cycle()

    async def _cycle(self) -> bool:
        reports = await asyncio.gather(*(p.poll() for p in self.pollers.values()))
        failed_deliveries = await self.deliverer.drain()
        self.collector.cycle_over(idle=True)
        for name, report in zip(self.pollers, reports, strict=True):
            self._log.info(
                "cycle",
                source=name,
                changed=report.changed,
                unchanged=report.unchanged,
                errors=report.errors,
                failing=report.failing,
            )
        return all(r.clean for r in reports) and failed_deliveries == 0

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set, then drain within ``drain_grace``.

        Tells systemd READY=1 once listening and scheduled, WATCHDOG=1 while polls make progress,
        STOPPING=1 on the way out.
        """
        address = self.config.daemon.metrics
        if address:
            self.server = OpsServer(
                self.metrics, address, self.health.problem, self.readiness, self.status, self._desk_page()
            )
            try:
                await self.server.start()
            except OSError as exc:
                raise StartupError(f"daemon.metrics: cannot listen on {address}: {exc.strerror}") from None
            self._log.info("http endpoints listening", port=self.server.port)
        self.deliverer.start()
        for poller in self.pollers.values():
            self.runs.schedule(poller)
        self.scheduler.start()
        helpers = self._helpers()
        self.notifier.send("READY=1", f"STATUS={self.summary()}")
        self._log.info("started", sources=list(self.pollers), sinks=list(self.sinks))
        await stop.wait()
        self.notifier.send("STOPPING=1", "STATUS=stopping: draining polls and deliveries")
        self._log.info("stopping")
        for helper in helpers:
            helper.cancel()
        await self._drain()

    def _helpers(self) -> list[asyncio.Task[None]]:
        """The long-running tasks beside the polls: heartbeat, command-line requests, the
        replicas' leases and change notices, the systemd watchdog."""
        state_dir = self.config.daemon.state_dir
        sweep = RetentionSweep(self.store, self.blobs)
        work = {
            "heartbeat": self.health.heartbeat(),
            "requests": retrying(
                self.tasks, "requests", lambda: handoff.serve_once(state_dir, self._request)
            ),
            "retention": retrying(self.tasks, "retention", sweep.run),
            "outbox gauges": retrying(self.tasks, "outbox gauges", self._gauges),
            "desk": retrying(self.tasks, "desk", lambda: desk_work.apply_waiting(self.pollers)),
        }
        if self.shared is not None:
            work.update(self.shared.helpers(self.tasks, self.deliverer.wake))
        interval = watchdog_interval()
        if interval is not None:
            work["watchdog"] = watchdog(interval, self.notifier, self.health.problem, self.summary)
        helpers = [asyncio.create_task(coroutine, name=name) for name, coroutine in work.items()]
        for helper in helpers:
            self.tasks.watch(helper)
        return helpers

    async def _gauges(self) -> None:
        """The outbox gauges from the state every few seconds, not only after a delivery round:
        a sink stuck in a delivery would otherwise show the depth it had before it."""
        while True:
            await asyncio.sleep(GAUGES_EVERY)
            await asyncio.wait_for(self.deliverer.refresh_depths(), GAUGES_EVERY * 4)

    async def _request(self, request: dict[str, Any]) -> dict[str, Any]:
        """A request from the command line (``pollerd redeliver`` or ``pollerd calls`` while
        this daemon runs)."""
        if isinstance(request.get("decide"), dict):
            return await self.decide(request["decide"], str(request.get("made_by") or "?"))
        event_id, sink = request.get("redeliver"), request.get("sink")
        state_dir = self.config.daemon.state_dir
        if isinstance(self.store, SqliteStore):
            code, message = await self.store.run(redeliver_in, state_dir, event_id, sink)
        else:
            code, message = await redeliver_in_database(self.store, event_id, sink)
        if code == 0:
            self._log.info("redelivery requested", event_id=event_id, sink=sink, result=message)
            await self.deliverer.refresh_depths()
            self.deliverer.wake()
        return {"code": code, "message": message}

    async def decide(self, fields: dict[str, Any], made_by: str) -> dict[str, Any]:
        """A decision of the desk, kept, applied where this daemon polls its source, and told."""
        decision = desk_work.decision_of(fields, made_by)
        if isinstance(decision, str):
            return {"code": 2, "message": decision}
        if decision.source not in {s.name for s in self.config.sources if s.kind == "ap"}:
            return {"code": 2, "message": f"no ap source is called {decision.source!r}"}
        taken = await desk_work.take(self.store, self.pollers, decision)
        self._log.info("desk decision", decision=taken.id, by=taken.made_by, status=taken.status)
        return desk_work.answer(taken)

    def _desk_page(self) -> DeskPage | None:
        """``/desk`` where a source is ``ap`` (its form only with a control token)."""
        names = [s.name for s in self.config.sources if s.kind == "ap"]
        if not names:
            return None
        token = self.config.daemon.control_token

        async def boards() -> list[dict[str, Any]]:
            return [await desk_board(self.store, name) for name in names]

        return DeskPage(None if token is None else token.get_secret_value(), self.decide, boards)

    def readiness(self) -> str | None:
        """Why the daemon is not ready, or None: state open, and every source has known what to
        watch and had an answer (from its API or a resource) since the start, unless it is still
        within ``startup_grace``; a source stopped for good is reported by the status instead."""
        if self._opened_at is None:
            return "the state directory is not open"
        if time.monotonic() - self._opened_at <= self.config.daemon.startup_grace:
            return None
        waiting = []
        for name, poller in self.pollers.items():
            status = poller.status()
            if not poller.stopped and not (poller.ready and status.answered):
                why = MASKED.optional(status.discovery_error) or "no answer yet"
                waiting.append(f"{name} ({why})")
        return f"never discovered or answered: {'; '.join(waiting)}" if waiting else None

    async def status(self) -> dict[str, Any]:
        """The data of ``/status`` and ``/status.json``."""
        outages = {name: o for name in self.sinks if (o := self.deliverer.outages.failing(name)) is not None}
        status = await snapshot(
            self.pollers, self.scheduler, self.store, list(self.config.sinks), outages, self._since
        )
        if self.shared is not None:
            status.update(await self.shared.status())
        if self.state_lost:
            status["state_lost"] = self.state_lost
        return status

    def summary(self) -> str:
        changes = sum(poller.status().changes for poller in self.pollers.values())
        return (
            f"{len(self.pollers)} sources, {len(self.sinks)} sinks, {changes} changes, "
            f"{self.deliverer.pending} deliveries pending"
        )

    async def reload(self, path: Path) -> bool:
        """Re-read the config file and apply it (see ``Reloader``); False if it was refused."""
        return await self._reloader.reload(path)

    async def _drain(self) -> None:
        """Stop scheduling; let the polls (stragglers too) and deliveries in flight finish within
        ``drain_grace``; then cancel what is left, quietly, and say how much that was."""
        grace = self.config.daemon.drain_grace
        started = time.monotonic()
        deliveries = asyncio.ensure_future(self.deliverer.stop(grace))
        abandoned = await self.runs.drain(list(self.pollers.values()), grace)
        cancelled_deliveries = await deliveries
        flushed = await self.deliverer.flush(grace - (time.monotonic() - started))  # the last polls' changes
        cancelled_deliveries += 0 if flushed else 1
        self.scheduler.shutdown()
        if self.shared is not None:
            await self.shared.give_back("stopping")
        log = self._log.warning if abandoned or cancelled_deliveries else self._log.info
        log(
            "drained",
            seconds=round(time.monotonic() - started, 2),
            polls_abandoned=abandoned,
            deliveries_abandoned=cancelled_deliveries,
            drain_grace=grace,
        )

    async def _fenced(self, lease: str) -> None:
        if self.shared is not None:
            await self.shared.keeper.fenced(lease)

    async def _source_fenced(self, source: str) -> None:
        lease = self.shared.lease_of(source) if self.shared is not None else None
        if self.shared is not None and lease is not None:
            await self.shared.keeper.fenced(lease)

    async def close(self) -> None:
        """Release everything in reverse order of opening; a failing close does not stop the rest."""
        closers: list[tuple[str, Callable[[], Awaitable[None]]]] = []
        if self.server is not None:
            closers.append(("http endpoints", self.server.stop))
        closers += [(f"sink {name}", sink.close) for name, sink in self.sinks.items()]
        if self._session is not None:
            closers.append(("http session", self._session.close))
        closers.append(("recordings", self.recordings.close))
        closers.append(("state store", self.store.close))
        self.notifier.close()
        for what, close in closers:
            try:
                await close()
            except Exception:
                self._log.exception("close failed", what=what)
        self.collector.close()
        self.lock.release()
