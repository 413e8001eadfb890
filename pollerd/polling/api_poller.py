"""What the pollers of API sources share (AP, Democracy Club): their resources are API answers,
not files, so they poll on their own terms and pace their cycles to a request budget, but they
report, record, write and stop like every poller."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from pollerd.config.base import SourceBase
from pollerd.core.election import Rules
from pollerd.core.masking import MASKED
from pollerd.core.model import Download, Outcome, PollReport, ResourceState, Validators
from pollerd.core.payload import PayloadRejected, strict_json
from pollerd.polling.base import PollerBase
from pollerd.polling.budget_plan import spacing
from pollerd.polling.context import PollContext
from pollerd.polling.spool import SMALL_BODY

NO_VALIDATORS = Validators()


class ApiPoller(PollerBase):
    """The common part: pacing to the budget, the cycle report, payloads written and read."""

    def __init__(
        self, config: SourceBase, context: PollContext, logger: str, rules: Rules | None = None
    ) -> None:
        super().__init__(config, context, logger, rules)
        self._interval = config.interval
        self._requests = 0  # made in this cycle
        self._deferred = 0  # put off in this cycle: the budget was spent
        self._cycle_started = 0.0
        self._next_cycle_at = 0.0

    @property
    def ready(self) -> bool:
        """Answered at least once (now, or in an earlier run)."""
        return any(s.last_success_at is not None or s.sha256 is not None for s in self.states.values())

    def _paced(self) -> bool:
        """Whether this cycle must wait: the last one's requests still use this source's share
        of its budget (the cycles are spread instead of spending the budget in a burst), and the
        budget has no room now (a source never sits idle while its budget has room)."""
        now = self._clock()
        if now < self._next_cycle_at and not self._room():
            return True
        self._cycle_started, self._requests, self._deferred = now, 0, 0
        return False

    def _room(self) -> bool:
        """Whether the budget would take a request now (each kind knows its budgets)."""
        return False

    def wake_in(self) -> float | None:
        """Seconds until the next cycle is worth running before its interval: a cycle put off
        requests, and the budget frees one then (None: the interval decides)."""
        return None

    def _counted(self) -> None:
        """One request of this cycle was sent."""
        self._requests += 1

    def _deferring(self) -> None:
        """One request of this cycle was put off: the budget is spent for now."""
        self._deferred += 1
        self.tally.deferred()

    def _pace(self) -> None:
        """Set when the next cycle may run, from this cycle's requests and the budget share."""
        if self.fit is None:
            return
        spread = spacing(self._requests + self._deferred, self.fit.allowance, self.fit.window)
        limited = spread > self._interval or self._deferred > 0
        # the schedule spaces cycles that fit; only a source over its share is held back
        self._next_cycle_at = self._cycle_started + spread if limited else 0.0
        was_limited = self.tally.status().budget_limited
        if limited and not was_limited:
            self._log.warning(
                "polling less often than configured, to fit the request budget",
                requests=self._requests + self._deferred,
                every=round(spread, 1),
                budget=f"{self.fit.limit} per {self.fit.window:g}s",
            )
        elif was_limited and not limited:
            self._log.info("polling at the configured interval again")
        self.tally.paced(limited, spread)

    def _report(self, outcomes: list[Outcome | None]) -> PollReport:
        """The cycle's report (``None``: skipped), counted like every source kind's."""
        self._pace()
        for outcome in outcomes:
            if outcome is not None:
                self.tally.polled(outcome)
        # every state was saved before the report: the state took that write
        report = PollReport.of(outcomes, failing=self._failing(), wrote=bool(self.states))
        return self._finish(report, self._watched())

    def _watched(self) -> int:
        """How many resources the source watches now (each kind knows its own)."""
        raise NotImplementedError

    async def _payload(
        self,
        body: bytes,
        url: str,
        validators: Validators = NO_VALIDATORS,
        identity: tuple[str, int] | None = None,
    ) -> Download:
        """A payload pollerd made itself (a snapshot, a record), ready for the recorder (held in
        memory: it is written once, into the blob store, if it is recorded). ``identity``: the
        version's digest and whole size where ``body`` is not the whole version (an AP snapshot
        kept as its change); else the body's own sha256 and length."""
        if identity is None:
            small = len(body) <= SMALL_BODY
            identity = (_sha256(body) if small else await asyncio.to_thread(_sha256, body), len(body))
        digest, size = identity
        return Download(None, digest, size, "application/json", validators, url, body=body)

    async def _stored_json(self, state: ResourceState | None) -> Any:
        """The last recorded payload of a resource, parsed (None if there is none)."""
        if state is None or state.sha256 is None:
            return None
        return await self._versions.read(state.sha256)

    async def _parse(self, download: Download) -> Any:
        """A downloaded body as JSON; PayloadRejected (and the file discarded) if it is not."""
        try:
            return await asyncio.to_thread(_read_json, download)
        except PayloadRejected:
            await self._blobs.drop(download)
            raise

    def _rejected(self, exc: Exception) -> None:
        """Count a refused payload (other failures are the kind's to classify)."""
        if isinstance(exc, PayloadRejected):
            self.tally.rejected(exc.reason)

    @staticmethod
    def _redact(text: str) -> str:
        return MASKED(text)


def _sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def _read_json(download: Download) -> Any:
    return strict_json(download.read_bytes())
