"""The poll cycle of a file source (``http``, ``fso``): discover, probe, fetch, detect, and record
changes in the outbox; a failing host waits out its backoff, or gives way to a mirror."""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import time

from pollerd.config import FsoSourceConfig, HttpSourceConfig
from pollerd.core.model import Outcome, PollReport, Resource, ResourceState
from pollerd.core.payload import PayloadRejected
from pollerd.polling.answers import FetchFailure, host_of
from pollerd.polling.base import PollerBase
from pollerd.polling.context import PollContext
from pollerd.polling.discovery import Discovery
from pollerd.polling.fallback import HostFallback
from pollerd.polling.probe import Prober
from pollerd.polling.saved import SavedStates
from pollerd.polling.source import Source
from pollerd.store.protocol import StateRefused
from pollerd.telemetry.tasks import describe, refused_write

BATCH = 500


class SourcePoller(PollerBase):
    """Owns one file source's resources and their state; what to watch comes from its ``Source``."""

    config: HttpSourceConfig | FsoSourceConfig

    def __init__(
        self, config: HttpSourceConfig | FsoSourceConfig, source: Source, context: PollContext
    ) -> None:
        super().__init__(config, context, "pollerd.poll", getattr(source, "rules", None))
        self.config = config
        headers = {k: v.get_secret_value() for k, v in config.headers.items()}
        self.discovery = Discovery(source, self._store, self.tally, self._backoff, self._log, self._clock)
        self._prober = Prober(
            config, source, self._client, self._blobs, self._recorder, self.tally, self._log, headers
        )
        self._fallback = HostFallback(
            list(config.fallback_urls), config.fallback_after, self.tally, self._log
        )
        self._saved = SavedStates(config.interval)
        self._host_backoff: dict[str, float] = {}
        self._running: dict[str, asyncio.Task[Outcome]] = {}  # stragglers of earlier cycles
        self._finished_late: set[str] = set()

    @property
    def resources(self) -> list[Resource]:
        """What the source watches now."""
        return self.discovery.resources

    @property
    def ready(self) -> bool:
        """Discovered at least once (now, or in an earlier run)."""
        return self.discovery.discovered_at is not None or bool(self.resources)

    @property
    def stragglers(self) -> list[asyncio.Task[Outcome]]:
        """Probes still running from an earlier cycle (for a shutdown to wait for)."""
        return list(self._running.values())

    async def load(self) -> None:
        """Read the stored state and last discovery of this source (before the first poll)."""
        self.states = await self._store.load_states(self.name)
        self._saved.remember(self.states.values())
        await self.discovery.load(self.states)

    async def poll(self) -> PollReport:
        """One cycle over every resource that is not waiting out a backoff."""
        started = time.monotonic()
        discovery_ok = await self.discovery.refresh_if_due(bool(self._failing_now()))
        now = self._clock()
        due = [r for r in self.resources if r.id not in self._running and self._is_due(r, now)]
        outcomes = await self._probe_all(due, started)
        touched = [*outcomes, *self._finished_late]
        self._finished_late = set()
        failing = self._failing_now() & {rid for rid, o in outcomes.items() if o is Outcome.ERROR}
        if failing and self.discovery.allowed:
            outcomes.update(await self._follow_moves(failing))
        touched += self.discovery.switched
        self.discovery.switched = []
        if self._fallback.active and self.resources and await self._prober.answers(self.resources[0].url):
            self._fallback.back_to_primary()
            self._reset_backoff()
        changed = self._saved.changed(
            self.states[rid] for rid in dict.fromkeys(touched) if rid in self.states
        )
        await self._store.save_states(self.name, changed)
        self._saved.remember(changed)
        report = PollReport.of(
            outcomes.values(),
            skipped=len(self.resources) - len(outcomes),
            discovery_failed=not discovery_ok,
            refused_urls=self.discovery.refused,
            failing=self._failing({r.id for r in self.resources}),
            wrote=bool(changed) or Outcome.CHANGED in outcomes.values(),
        )
        return self._finish(report, len(self.resources))

    def _failing_now(self) -> set[str]:
        """Listed resources that failed ``rediscover_after`` times in a row: moved, maybe."""
        limit = self.config.rediscover_after
        return {
            rid for rid, s in self.states.items() if s.failures >= limit and self.discovery.is_current(rid)
        }

    async def _follow_moves(self, failing: set[str]) -> dict[str, Outcome]:
        """Ask the source again at once; poll the failing resources it moved, at their new URL."""
        self.tally.rediscovered()
        self._log.info("re-discovering", failing=sorted(failing))
        moved = [r for r in await self.discovery.moved() if r.id in failing]
        retried = await asyncio.gather(*(self._poll_resource(r) for r in moved))
        return dict(zip([r.id for r in moved], retried, strict=True))

    async def _probe_all(self, due: list[Resource], started: float) -> dict[str, Outcome]:
        """Probe ``due`` in bounded batches. With ``patience`` set (the daemon's scheduled
        cycles), a resource still unanswered when it runs out is left running on its own: the
        cycle commits what finished, so one slow or hanging resource never holds up the others;
        it is not probed again until it is done, and its state is saved with a later cycle."""
        outcomes: dict[str, Outcome] = {}
        for start in range(0, len(due), BATCH):  # bounded: 10,000 coroutines at once cost memory
            batch = {r.id: asyncio.ensure_future(self._poll_resource(r)) for r in due[start : start + BATCH]}
            for task in batch.values():  # a refusal is read here or below, whoever ends up waiting
                task.add_done_callback(_read_refusal)
            left = None if self.patience is None else self.patience - (time.monotonic() - started)
            if left is not None and left <= 0:
                left = None  # stragglers only from batches begun in time: at most one batch
            done, _ = await asyncio.wait(batch.values(), timeout=left)
            refused = [e for t in done if not t.cancelled() and (e := t.exception()) is not None]
            for rid, task in batch.items():
                if task not in done:
                    self._running[rid] = task
                    task.add_done_callback(functools.partial(self._straggler_done, rid))
                elif task.cancelled() or task.exception() is None:
                    outcomes[rid] = task.result()
            if refused:
                raise refused[0]
        return outcomes

    def _straggler_done(self, resource_id: str, task: asyncio.Task[Outcome]) -> None:
        self._running.pop(resource_id, None)
        if task.cancelled() or task.exception() is None:
            self._finished_late.add(resource_id)
        # else the state refused its write: nothing was committed; the next cycle probes it again

    def _is_due(self, resource: Resource, now: float) -> bool:
        state = self.states.get(resource.id)
        if state is not None and state.waiting(now):
            return False
        host = host_of(self._fallback.rewrite(resource.url))
        return self._host_backoff.get(host, 0) <= now

    async def _poll_resource(self, resource: Resource) -> Outcome:
        state = self.states.setdefault(resource.id, ResourceState(resource.id))
        url = self._fallback.rewrite(resource.url)
        started = time.monotonic()
        try:
            outcome = await self._prober.check(resource, state, url)
        except FetchFailure as exc:
            outcome = self._failed(
                state, url, exc.reason, exc.detail, exc.retry_after, exc.host_wide, exc.status
            )
        except PayloadRejected as exc:
            self.tally.rejected(exc.reason)
            outcome = self._failed(state, url, "rejected", str(exc))
        except (sqlite3.DatabaseError, StateRefused):
            raise  # the state failed or refused (a lease lost): the whole cycle fails, and it is said
        except Exception as exc:  # a bug must cost one poll, never the daemon
            if refused_write(exc):  # the disk is full: the cycle fails (health says so), no traceback
                self._failed(state, url, "write", describe(exc))
                raise
            self._log.exception("poll crashed", resource=resource.id)
            outcome = self._failed(state, url, "internal", describe(exc))
        else:
            state.succeeded(self._clock())
            self._fallback.succeeded()
        self.tally.probed(time.monotonic() - started)
        self.tally.polled(outcome)
        return outcome

    def _failed(
        self,
        state: ResourceState,
        url: str,
        reason: str,
        detail: str,
        retry_after: float | None = None,
        host_wide: bool = False,
        status: int | None = None,
    ) -> Outcome:
        now = self._clock()
        delay = self._backoff.delay(state.failures + 1, retry_after)
        state.failed(f"{reason}: {detail}", now + delay)
        if host_wide:
            host = host_of(url)
            self._host_backoff[host] = max(self._host_backoff.get(host, 0), now + delay)
        self._log.warning(
            "poll failed",
            resource=state.resource_id,
            reason=reason,
            detail=detail,
            failures=state.failures,
            retry_in=round(delay, 2),
        )
        if status != 429 and self._fallback.failed():
            self._reset_backoff()
        return Outcome.ERROR

    def _reset_backoff(self) -> None:
        """A new host is a fresh start: nothing waits out the old host's backoff."""
        self._host_backoff.clear()
        for state in self.states.values():
            state.backoff_until = None


def _read_refusal(task: asyncio.Task[Outcome]) -> None:
    """Mark a probe's refused write as seen: the cycle that waits for it raises it; one that was
    cancelled or moved on meanwhile has nothing to add (the next cycle probes it again)."""
    if not task.cancelled():
        task.exception()
