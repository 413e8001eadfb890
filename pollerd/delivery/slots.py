"""One sink as the deliverer drives it (its policy, its state, its subscription, its bounded
attempts), and what one round over its pending deliveries did."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from dataclasses import dataclass, field

from pollerd.config.base import SinkBase
from pollerd.core.backoff import Backoff
from pollerd.core.model import Event
from pollerd.delivery.bounded import BoundedAttempts
from pollerd.delivery.fold import NumbersFold
from pollerd.delivery.subscription import Subscription
from pollerd.sinks import Sink
from pollerd.store.protocol import StateStore


@dataclass(frozen=True)
class RoundResult:
    """What one pass over a sink's pending deliveries did."""

    delivered: int
    failed: int
    next_due: float | None  # the earliest retry that is still waiting
    more: bool  # the batch was full: there may be more to do at once


@dataclass
class Slot:
    """One sink as the deliverer drives it."""

    name: str
    sink: Sink
    policy: SinkBase
    store: StateStore  # the state, under the sink's lease where replicas share the work
    epoch: int | None = None  # that lease's epoch
    pending: int = 0  # deliveries pending, as last counted
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def retry(self) -> Backoff:
        """The sink's retry schedule."""
        return Backoff(self.policy.retry_base, self.policy.retry_max)

    @functools.cached_property
    def subscription(self) -> Subscription:
        """What the sink takes of each event."""
        return Subscription.of(self.policy)

    @functools.cached_property
    def fold(self) -> NumbersFold | None:
        """Its noise control for what moved (None: every batch is told)."""
        if not self.policy.min_votes and not self.policy.min_margin_change:
            return None
        return NumbersFold(self.policy.min_votes, self.policy.min_margin_change)

    def view(self, event: Event) -> Event | None:
        """The event as this sink receives it: its subscribed election events, small batches
        folded into the next (a version is still a version); None when it takes nothing of it."""
        view = self.subscription.view(event)
        if view is None or self.fold is None:
            return view
        folded = self.fold.view(view)
        if folded is None and self.subscription.versions:
            return dataclasses.replace(view, election=())
        return folded

    @functools.cached_property
    def attempts(self) -> BoundedAttempts:
        """Its attempts, each within the sink's ``timeout`` (where it has one)."""
        return BoundedAttempts(getattr(self.policy, "timeout", None))
