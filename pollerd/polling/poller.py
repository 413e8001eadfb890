"""``Poller``: what the daemon needs of the poller of one source, whatever its kind."""

from __future__ import annotations

import asyncio
from typing import Protocol

from pollerd.config.base import SourceBase
from pollerd.core.model import Outcome, PollReport, ResourceState
from pollerd.polling.budget_plan import BudgetFit
from pollerd.polling.tally import PollerStatus


class Poller(Protocol):
    """Polls one source; one cycle runs at a time (the scheduler's job)."""

    name: str
    kind: str
    states: dict[str, ResourceState]
    fit: BudgetFit | None  # the source's share of a request budget it spends, if any
    patience: float | None  # how long a cycle waits for its slowest resources (None: for all)

    @property
    def config(self) -> SourceBase:
        """The source's configuration table."""
        ...

    @property
    def ready(self) -> bool:
        """Whether the source knows what to watch (discovered, or answered, at least once)."""
        ...

    @property
    def stopped(self) -> bool:
        """Whether the source stopped for good (a refused key) until a restart."""
        ...

    @property
    def stragglers(self) -> list[asyncio.Task[Outcome]]:
        """Requests still running from an earlier cycle (for a shutdown to wait for)."""
        ...

    def wake_in(self) -> float | None:
        """Seconds until the next cycle is worth running before its interval (a budget frees a
        request a put-off query waits for); None: the interval decides."""
        ...

    def status(self) -> PollerStatus:
        """What the source has done and how it is doing (the status page, the demo's summary)."""
        ...

    async def load(self) -> None:
        """Read stored state before the first poll."""
        ...

    async def poll(self) -> PollReport:
        """One cycle."""
        ...
