"""What the pollers of API sources share (AP, Democracy Club): their resources are API answers,
not files, so they poll on their own terms, but report, record, write and stop the same way."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from typing import Any

import structlog

from pollerd.config.base import SourceBase
from pollerd.core.backoff import Backoff
from pollerd.core.masking import MASKED
from pollerd.core.model import Download, ResourceState, Validators
from pollerd.core.payload import PayloadRejected, strict_json
from pollerd.polling.budget_plan import BudgetFit, spacing
from pollerd.polling.context import PollContext
from pollerd.polling.file_poller import Outcome, PollReport
from pollerd.polling.recorder import ChangeRecorder

NO_VALIDATORS = Validators()


class ApiPoller:
    """The common part: state, the recorder, backoff, the cycle report, stopping for good."""

    def __init__(self, config: SourceBase, context: PollContext, logger: str) -> None:
        self.name = config.name
        self._interval = config.interval
        self.states: dict[str, ResourceState] = {}
        self.failed = False
        self._client = context.client
        self._store = context.store
        self._blobs = context.blobs
        self._metrics = context.metrics
        self._clock = context.clock
        self._recorder = ChangeRecorder(self.name, list(config.sinks), context)
        self._backoff = Backoff(config.backoff_base, config.backoff_max)
        self._log = structlog.get_logger(logger).bind(source=self.name)
        self.fit: BudgetFit | None = None  # this source's share of its request budget
        self.budget_limited = False  # polling less often than configured, to fit the budget
        self.spread = 0.0  # seconds between cycles the budget allows now
        self._requests = 0  # made in this cycle
        self._deferred = 0  # put off in this cycle: the budget was spent
        self._cycle_started = 0.0
        self._next_cycle_at = 0.0

    @property
    def ready(self) -> bool:
        """Answered at least once (now, or in an earlier run)."""
        return any(s.last_success_at is not None or s.sha256 is not None for s in self.states.values())

    async def _load_states(self) -> None:
        """Stored state; a restart clears a stop (the key may have been fixed)."""
        self.states = await self._store.load_states(self.name)
        await self._store.mark_stopped(self.name, None)

    def _paced(self) -> bool:
        """Whether this cycle must wait: the last one's requests still use this source's share
        of its budget (the cycles are spread instead of spending the budget in a burst)."""
        now = self._clock()
        if now < self._next_cycle_at:
            return True
        self._cycle_started, self._requests, self._deferred = now, 0, 0
        return False

    def _counted(self) -> None:
        """One request of this cycle was sent."""
        self._requests += 1

    def _deferring(self) -> None:
        """One request of this cycle was put off: the budget is spent for now."""
        self._deferred += 1
        self._metrics.quota_deferred.labels(self.name).inc()

    def _pace(self) -> None:
        """Set when the next cycle may run, from this cycle's requests and the budget share."""
        if self.fit is None:
            return
        spread = spacing(self._requests + self._deferred, self.fit.allowance, self.fit.window)
        limited = spread > self._interval or self._deferred > 0
        # the schedule spaces cycles that fit; only a source over its share is held back
        self._next_cycle_at = self._cycle_started + spread if limited else 0.0
        self.spread = spread
        if limited and not self.budget_limited:
            self._log.warning(
                "polling less often than configured, to fit the request budget",
                requests=self._requests + self._deferred,
                every=round(spread, 1),
                budget=f"{self.fit.limit} per {self.fit.window:g}s",
            )
        elif self.budget_limited and not limited:
            self._log.info("polling at the configured interval again")
        self.budget_limited = limited
        self._metrics.budget_limited.labels(self.name).set(int(limited))

    def _report(self, outcomes: list[Outcome | None]) -> PollReport:
        """The cycle's report (``None``: skipped), counted in the metrics every source kind
        shares; a clean cycle is the source's last success."""
        self._pace()
        done = [o for o in outcomes if o is not None]
        for outcome in done:
            self._metrics.polls.labels(self.name, outcome.value).inc()
        self._metrics.resources_watched.labels(self.name).set(self._watched())
        now = self._clock()
        self._metrics.in_backoff.labels(self.name).set(
            sum(1 for s in self.states.values() if (s.backoff_until or 0) > now)
        )
        report = PollReport(
            changed=done.count(Outcome.CHANGED),
            unchanged=done.count(Outcome.UNCHANGED),
            errors=done.count(Outcome.ERROR),
            skipped=outcomes.count(None),
            failing=sum(1 for s in self.states.values() if s.failures > 0),
        )
        if done and report.clean:
            self._metrics.last_success.labels(self.name).set(self._clock())
        return report

    def _watched(self) -> int:
        """How many resources the source watches now (each kind knows its own)."""
        raise NotImplementedError

    async def _write(self, body: bytes, url: str, validators: Validators = NO_VALIDATORS) -> Download:
        """A payload pollerd made itself (a snapshot, a record), ready for the recorder."""
        path = self._blobs.tmp_dir / f"{uuid.uuid4().hex}.part"
        await asyncio.to_thread(path.write_bytes, body)
        return Download(
            path, hashlib.sha256(body).hexdigest(), len(body), "application/json", validators, url
        )

    async def _stored_json(self, state: ResourceState | None) -> Any:
        """The last recorded payload of a resource, parsed (None if there is none)."""
        if state is None or state.sha256 is None:
            return None
        path = self._blobs.path(state.sha256)
        try:
            return await asyncio.to_thread(lambda: strict_json(path.read_bytes()))
        except (OSError, PayloadRejected):
            return None

    async def _parse(self, download: Download) -> Any:
        """A downloaded body as JSON; PayloadRejected (and the file discarded) if it is not."""
        try:
            return await asyncio.to_thread(_read_json, download)
        except PayloadRejected:
            await self._blobs.discard(download.path)
            raise

    async def _stop(self, reason: str) -> None:
        """Stop the source for good (until a restart): metric, status and one clear log line."""
        self.failed = True
        self._metrics.source_failed.labels(self.name).set(1)
        await self._store.mark_stopped(self.name, reason)
        self._log.error("source stopped", reason=reason)

    @staticmethod
    def _redact(text: str) -> str:
        return MASKED(text)


def _read_json(download: Download) -> Any:
    return strict_json(download.path.read_bytes())
