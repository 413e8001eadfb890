"""The poll cycle of one source: discover, probe, fetch, detect, and record changes in the outbox."""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol
from urllib.parse import urlsplit

import structlog

from pollerd.config import FsoSourceConfig, HttpSourceConfig
from pollerd.config.base import SourceBase
from pollerd.core.backoff import Backoff
from pollerd.core.detect import (
    HEAD_REFUSED,
    HeadAction,
    Verdict,
    after_fetch,
    after_head,
    conditional_validators,
    probe_strategy,
    strategy_after_get,
)
from pollerd.core.model import Download, Resource, ResourceState, Strategy, Validators
from pollerd.core.payload import PayloadRejected, effective_format, extension_for, validate_payload
from pollerd.polling.context import PollContext
from pollerd.polling.fallback import HostFallback
from pollerd.polling.fetch import FetchFailure, host_of
from pollerd.polling.recorder import ChangeRecorder
from pollerd.polling.source import DiscoveryFailed, Source
from pollerd.telemetry.tasks import describe

BATCH = 500


class Outcome(StrEnum):
    """The result of polling one resource once."""

    UNCHANGED = "unchanged"
    CHANGED = "changed"
    ERROR = "error"


@dataclass(frozen=True)
class PollReport:
    """What one cycle of a source did."""

    changed: int = 0
    unchanged: int = 0
    errors: int = 0
    skipped: int = 0
    discovery_failed: bool = False
    refused_urls: int = 0
    failing: int = 0  # resources whose last poll failed, this cycle or before (waiting out a backoff)

    @property
    def ok(self) -> bool:
        """No resource failed, the resources are known, and none points where it must not."""
        return self.errors == 0 and not self.discovery_failed and self.refused_urls == 0

    @property
    def clean(self) -> bool:
        """ok, and no resource is still failing from an earlier cycle (``pollerd once``'s exit)."""
        return self.ok and self.failing == 0


class Poller(Protocol):
    """What the daemon needs of the poller of one source, whatever its kind."""

    name: str
    states: dict[str, ResourceState]

    @property
    def config(self) -> SourceBase:
        """The source's configuration table."""
        ...

    @property
    def ready(self) -> bool:
        """Whether the source knows what to watch (discovered, or answered, at least once)."""
        ...

    async def load(self) -> None:
        """Read stored state before the first poll."""
        ...

    async def poll(self) -> PollReport:
        """One cycle."""
        ...


class SourcePoller:
    """Owns one source's resources and their state; one cycle runs at a time (the scheduler's job)."""

    def __init__(
        self,
        config: HttpSourceConfig | FsoSourceConfig,
        source: Source,
        context: PollContext,
    ) -> None:
        self.config = config
        self.name = config.name
        self._source = source
        self._client = context.client
        self._store = context.store
        self._blobs = context.blobs
        self._metrics = context.metrics
        self._clock = context.clock
        self._log = structlog.get_logger("pollerd.poll").bind(source=self.name)
        self._backoff = Backoff(config.backoff_base, config.backoff_max)
        self._strategy = Strategy(config.strategy)
        self._headers = {k: v.get_secret_value() for k, v in config.headers.items()}
        self._recorder = ChangeRecorder(self.name, list(config.sinks), context)
        self._fallback = HostFallback(
            self.name, list(config.fallback_urls), config.fallback_after, self._metrics, self._log
        )
        self._host_backoff: dict[str, float] = {}
        self._discovered_at: float | None = None
        self._discovery_failures = 0
        self._discovery_retry_at = 0.0
        self._switched: list[str] = []
        self._ids: frozenset[str] = frozenset()
        self._refused = 0
        self._running: dict[str, asyncio.Task[Outcome]] = {}  # stragglers of earlier cycles
        self._finished_late: set[str] = set()
        self.patience: float | None = None  # how long a cycle waits for its slowest resources
        self.resources: list[Resource] = []
        self.states: dict[str, ResourceState] = {}

    @property
    def ready(self) -> bool:
        """Discovered at least once (now, or in an earlier run)."""
        return self._discovered_at is not None or bool(self.resources)

    async def load(self) -> None:
        """Read the stored state and last discovery of this source (before the first poll)."""
        self.states = await self._store.load_states(self.name)
        self.resources = await self._store.load_discovery(self.name) or []
        self._ids = frozenset(r.id for r in self.resources)

    async def poll(self) -> PollReport:
        """One cycle over every resource that is not waiting out a backoff."""
        self._refused = 0
        started = time.monotonic()
        discovery_ok = await self._discover_if_due()
        now = self._clock()
        due = [r for r in self.resources if r.id not in self._running and self._is_due(r, now)]
        outcomes = await self._probe_all(due, started)
        failing = {
            rid
            for rid, outcome in outcomes.items()
            if outcome is Outcome.ERROR and self.states[rid].failures >= self.config.rediscover_after
        }
        touched = [*outcomes, *self._finished_late]
        self._finished_late = set()
        if failing and self._discovery_allowed():
            self._metrics.rediscoveries.labels(self.name).inc()
            self._log.info("re-discovering", failing=sorted(failing))
            moved = [r for r in await self._rediscover() if r.id in failing]
            retried = await asyncio.gather(*(self._poll_resource(r) for r in moved))
            outcomes.update(zip([r.id for r in moved], retried, strict=True))
        touched += self._switched
        self._switched = []
        if self._fallback.active:
            await self._probe_primary()
        await self._store.save_states(
            self.name, [self.states[rid] for rid in dict.fromkeys(touched) if rid in self.states]
        )
        results = list(outcomes.values())
        report = PollReport(
            changed=results.count(Outcome.CHANGED),
            unchanged=results.count(Outcome.UNCHANGED),
            errors=results.count(Outcome.ERROR),
            skipped=len(self.resources) - len(outcomes),
            discovery_failed=not discovery_ok,
            refused_urls=self._refused,
            failing=sum(1 for r in self.resources if r.id in self.states and self.states[r.id].failures > 0),
        )
        self._record_cycle(report)
        return report

    async def _probe_all(self, due: list[Resource], started: float) -> dict[str, Outcome]:
        """Probe ``due`` in bounded batches. With ``patience`` set (the daemon's scheduled
        cycles), a resource still unanswered when it runs out is left running on its own: the
        cycle commits what finished, so one slow or hanging resource never holds up the others;
        it is not probed again until it is done, and its state is saved with a later cycle."""
        outcomes: dict[str, Outcome] = {}
        for start in range(0, len(due), BATCH):  # bounded: 10,000 coroutines at once cost memory
            batch = {r.id: asyncio.ensure_future(self._poll_resource(r)) for r in due[start : start + BATCH]}
            left = None if self.patience is None else self.patience - (time.monotonic() - started)
            if left is not None and left <= 0:
                left = None  # stragglers only from batches begun in time: at most one batch
            done, _ = await asyncio.wait(batch.values(), timeout=left)
            for rid, task in batch.items():
                if task in done:
                    outcomes[rid] = task.result()
                else:
                    self._running[rid] = task
                    task.add_done_callback(functools.partial(self._straggler_done, rid))
        return outcomes

    def _straggler_done(self, resource_id: str, _: asyncio.Task[Outcome]) -> None:
        self._running.pop(resource_id, None)
        self._finished_late.add(resource_id)

    @property
    def stragglers(self) -> list[asyncio.Task[Outcome]]:
        """Probes still running from an earlier cycle (for a shutdown to wait for)."""
        return list(self._running.values())

    def _record_cycle(self, report: PollReport) -> None:
        now = self._clock()
        waiting = sum(1 for s in self.states.values() if (s.backoff_until or 0) > now)
        self._metrics.in_backoff.labels(self.name).set(waiting)
        if report.clean:  # a cycle that only skipped a failing resource is not clean
            self._metrics.last_success.labels(self.name).set(now)

    def _is_due(self, resource: Resource, now: float) -> bool:
        state = self.states.get(resource.id)
        if state is not None and (state.backoff_until or 0) > now:
            return False
        host = host_of(self._fallback.rewrite(resource.url))
        return self._host_backoff.get(host, 0) <= now

    async def _discover_if_due(self) -> bool:
        """Discover at start, every discovery_interval, and every cycle while a resource fails
        (the upstream may have moved it: the moment it says so, pollerd follows)."""
        interval = self._source.discovery_interval
        due = (
            self._discovered_at is None
            or self._any_failing()
            or (interval is not None and self._clock() - self._discovered_at >= interval)
        )
        if not due:
            return True
        if not self._discovery_allowed():
            return False
        return await self._discover()

    def _any_failing(self) -> bool:
        return any(
            state.failures >= self.config.rediscover_after
            for rid, state in self.states.items()
            if rid in self._ids
        )

    def _discovery_allowed(self) -> bool:
        """False while a failing discovery API waits out its backoff."""
        return self._clock() >= self._discovery_retry_at

    async def _rediscover(self) -> list[Resource]:
        """Discover now; the resources whose URL moved."""
        before = {r.id: r.url for r in self.resources}
        await self._discover()
        return [r for r in self.resources if r.id in before and before[r.id] != r.url]

    async def _discover(self) -> bool:
        """Ask the source for its resources; on failure keep the known (persisted) ones."""
        now = self._clock()
        try:
            found = await self._source.discover(list(self.resources))
        except DiscoveryFailed as exc:
            self._metrics.discoveries.labels(self.name, "error").inc()
            self._discovery_failures += 1
            delay = self._backoff.delay(self._discovery_failures)
            self._discovery_retry_at = now + delay
            self._log.warning(
                "discovery failed; polling the known URLs",
                error=str(exc),
                known=len(self.resources),
                retry_in=round(delay, 2),
            )
            return False
        self._metrics.discoveries.labels(self.name, "ok").inc()
        self._discovery_failures, self._discovery_retry_at = 0, 0.0
        self._discovered_at = now
        found = [r for r in found if self._allowed(r)]
        if found != self.resources:
            self._apply_discovery(found)
            await self._store.save_discovery(self.name, found)
        self._metrics.resources_watched.labels(self.name).set(len(self.resources))
        return True

    def _allowed(self, resource: Resource) -> bool:
        reason = self._source.policy.refusal(resource.url)
        if reason is None:
            return True
        self._refused += 1
        self._metrics.refused_urls.labels(self.name, reason).inc()
        self._log.error(
            "discovered URL refused: not polled",
            resource=resource.id,
            host=urlsplit(resource.url).hostname,
            reason=reason,
        )
        return False

    def _apply_discovery(self, found: list[Resource]) -> None:
        old = {r.id: r for r in self.resources}
        new = {r.id: r for r in found}
        added, removed = sorted(new.keys() - old.keys()), sorted(old.keys() - new.keys())
        if old and added:
            self._log.info("resources added", added=added)
        if removed:
            self._log.warning("resources no longer listed; not polled any more", removed=removed)
        for rid in sorted(new.keys() & old.keys()):
            if new[rid].url != old[rid].url:
                self._url_moved(rid, old[rid].url, new[rid].url)
        self.resources = found
        self._ids = frozenset(new)

    def _url_moved(self, resource_id: str, old_url: str, new_url: str) -> None:
        """Same resource, new place: the old host's validators and backoff mean nothing there.

        The content hash is kept, so identical bytes at the new URL are not a change.
        """
        state = self.states.setdefault(resource_id, ResourceState(resource_id))
        first = (state.url_switch or {}).get("from", old_url)
        at = datetime.fromtimestamp(self._clock(), UTC).isoformat().replace("+00:00", "Z")
        state.url_switch = {"from": first, "to": new_url, "at": at}
        state.validators = Validators()
        state.learned_strategy = None
        state.failures = 0
        state.backoff_until = None
        self._switched.append(resource_id)
        self._metrics.url_switches.labels(self.name).inc()
        self._log.warning("url switched", resource=resource_id, old_url=old_url, new_url=new_url)

    async def _probe_primary(self) -> None:
        resource = self.resources[0] if self.resources else None
        if resource is None:
            return
        try:
            head = await self._client.head(
                self.name, resource.url, self._headers, self.config.timeout, self._source.policy
            )
        except (FetchFailure, PayloadRejected):
            return
        if 200 <= head.status < 300 or head.status in HEAD_REFUSED - {403}:
            self._fallback.back_to_primary()
            self._reset_backoff()

    async def _poll_resource(self, resource: Resource) -> Outcome:
        state = self.states.setdefault(resource.id, ResourceState(resource.id))
        url = self._fallback.rewrite(resource.url)
        log = self._log.bind(resource=resource.id)
        started = time.monotonic()
        try:
            outcome = await self._check(resource, state, url)
        except FetchFailure as exc:
            outcome = self._failed(
                state,
                url,
                exc.reason,
                exc.detail,
                exc.retry_after,
                host_wide=exc.host_wide,
                rate_limited=exc.status == 429,
            )
        except PayloadRejected as exc:
            self._metrics.rejected.labels(self.name, exc.reason).inc()
            outcome = self._failed(state, url, "rejected", str(exc))
        except sqlite3.DatabaseError:
            raise  # the state itself fails: the whole cycle does, and /healthz says so
        except Exception as exc:  # a bug must cost one poll, never the daemon
            log.exception("poll crashed")
            outcome = self._failed(state, url, "internal", describe(exc))
        else:
            self._succeeded(state)
        self._metrics.probe_seconds.labels(self.name).observe(time.monotonic() - started)
        self._metrics.polls.labels(self.name, outcome.value).inc()
        return outcome

    async def _check(self, resource: Resource, state: ResourceState, url: str) -> Outcome:
        state.url = url
        strategy = probe_strategy(self._strategy, state)
        if strategy is Strategy.HEAD:
            head = await self._client.head(
                self.name, url, self._headers, self.config.timeout, self._source.policy
            )
            action = after_head(self._strategy, state, head.status, head.validators, head.content_length)
            if action is HeadAction.FAIL:
                raise FetchFailure(
                    "status", f"HTTP {head.status} on HEAD", status=head.status, retry_after=head.retry_after
                )
            if action is HeadAction.ADOPT:
                self._metrics.same_bytes.labels(self.name).inc()
                self._log.info(
                    "same content at this URL (its ETag is the content's MD5): "
                    "validators adopted, nothing downloaded",
                    resource=resource.id,
                )
                state.validators = head.validators
            if action in (HeadAction.UNCHANGED, HeadAction.ADOPT):
                state.learned_strategy = state.learned_strategy or Strategy.HEAD
                return Outcome.UNCHANGED
            if action is HeadAction.FALL_BACK:
                strategy = Strategy.CONDITIONAL
                self._log.info(
                    "HEAD is no help here; using conditional GET", resource=resource.id, status=head.status
                )
        answer = await self._client.get(
            self.name,
            url,
            self._headers,
            self.config.timeout,
            conditional_validators(strategy, state),
            self.config.max_bytes,
            self._source.policy,
        )
        if self._strategy is Strategy.AUTO:
            state.learned_strategy = strategy_after_get(self._strategy, strategy, answer.validators)
        if answer.download is None:
            return Outcome.UNCHANGED
        return await self._judge(resource, state, url, answer.download)

    async def _judge(self, resource: Resource, state: ResourceState, url: str, download: Download) -> Outcome:
        verdict = after_fetch(state, download.sha256, download.validators)
        if verdict is not Verdict.CHANGED:
            await self._blobs.discard(download.path)
            if verdict is Verdict.SAME_BYTES:
                self._metrics.same_bytes.labels(self.name).inc()
                self._log.info("new validators, same bytes", resource=resource.id)
            state.validators = download.validators
            state.md5 = state.md5 or download.md5  # a state from before MD5s were kept learns it
            return Outcome.UNCHANGED
        fmt = effective_format(resource.format, url, download.content_type)
        try:
            details = await asyncio.to_thread(self._inspect, resource, download, fmt)
            self.states[resource.id] = await self._recorder.record(
                resource, state, download, extension_for(fmt, url), details
            )
        finally:  # on every path: a recorded download has moved into the blob store already
            await self._blobs.discard(download.path)
        return Outcome.CHANGED

    def _inspect(self, resource: Resource, download: Download, fmt: str) -> dict[str, Any] | None:
        """Validate the payload and read the source's details from it (in a worker thread)."""
        document = validate_payload(download.path, fmt, resource.allow_empty)
        if document is None:
            return None
        try:
            return self._source.details(document)
        except Exception:  # details are a courtesy; they must never hold back a version
            self._log.exception("could not read details", resource=resource.id)
            return None

    def _succeeded(self, state: ResourceState) -> None:
        current = self.states[state.resource_id]  # _record_change may have replaced it
        current.failures = 0
        current.backoff_until = None
        current.last_error = None
        current.last_success_at = self._clock()
        self._fallback.succeeded()

    def _failed(
        self,
        state: ResourceState,
        url: str,
        reason: str,
        detail: str,
        retry_after: float | None = None,
        host_wide: bool = False,
        rate_limited: bool = False,
    ) -> Outcome:
        now = self._clock()
        state.failures += 1
        state.last_error = f"{reason}: {detail}"
        delay = self._backoff.delay(state.failures, retry_after)
        state.backoff_until = now + delay
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
        if not rate_limited and self._fallback.failed():
            self._reset_backoff()
        return Outcome.ERROR

    def _reset_backoff(self) -> None:
        """A new host is a fresh start: nothing waits out the old host's backoff."""
        self._host_backoff.clear()
        for state in self.states.values():
            state.backoff_until = None
