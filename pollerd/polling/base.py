"""``PollerBase``: what every poller is, whatever its kind: its state, its tally, its recorder,
its backoff, stopping for good, and the end of a cycle."""

from __future__ import annotations

import asyncio

import structlog

from pollerd.config.base import SourceBase
from pollerd.core.backoff import Backoff
from pollerd.core.election import Rules
from pollerd.core.model import Outcome, PollReport, ResourceState
from pollerd.polling.budget_plan import BudgetFit
from pollerd.polling.context import PollContext
from pollerd.polling.recorder import ChangeRecorder
from pollerd.polling.tally import PollerStatus


class PollerBase:
    """The common part of every ``Poller``; a kind adds ``load``, ``poll`` and ``ready``."""

    config: SourceBase

    def __init__(
        self, config: SourceBase, context: PollContext, logger: str, rules: Rules | None = None
    ) -> None:
        """``rules``: the feed's election rules, where its versions carry election events."""
        self.name, self.kind = config.name, config.kind
        self.states: dict[str, ResourceState] = {}
        self.fit: BudgetFit | None = None  # only kinds that spend a request budget use it
        self.patience: float | None = None  # only kinds that probe many resources at once use it
        self.tally = context.tally(config.name, config.kind)
        self._client = context.client
        self._store = context.store
        self._blobs = context.blobs
        self._versions = context.versions
        self._clock = context.clock
        self._recorder = ChangeRecorder(config.name, list(config.sinks), context, self.tally, rules)
        self._backoff = Backoff(config.backoff_base, config.backoff_max)
        self._log = structlog.get_logger(logger).bind(source=config.name)
        self._stopped = False

    @property
    def stopped(self) -> bool:
        """Whether the source stopped for good (until a restart)."""
        return self._stopped

    def wake_in(self) -> float | None:
        """Seconds until a cycle is worth running before its interval (None: the interval)."""
        return None

    @property
    def stragglers(self) -> list[asyncio.Task[Outcome]]:
        """Requests still running from an earlier cycle (none, unless the kind leaves some)."""
        return []

    def status(self) -> PollerStatus:
        """What the source has done and how it is doing."""
        return self.tally.status()

    async def _load_states(self) -> None:
        """Stored state; a restart clears a stop (the key may have been fixed)."""
        self.states = await self._store.load_states(self.name)
        await self._store.note_source(self.name, "stopped", None)

    async def _stop(self, reason: str) -> None:
        """Stop the source for good (until a restart): metric, status and one clear log line."""
        self._stopped = True
        self.tally.stopped(reason)
        await self._store.note_source(self.name, "stopped", reason)
        self._log.error("source stopped", reason=reason)

    def _finish(self, report: PollReport, watched: int) -> PollReport:
        """Count the cycle's end (see ``SourceTally.cycle``) and hand its report on."""
        self.tally.cycle(report, self.states.values(), watched, self._clock())
        return report

    def _failing(self, ids: set[str] | None = None) -> int:
        """How many resources (of ``ids``, if given) failed at their last poll."""
        return sum(1 for rid, s in self.states.items() if s.failures > 0 and (ids is None or rid in ids))
