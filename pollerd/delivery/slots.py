"""One sink as the deliverer drives it (its policy, its state, its subscription, its bounded
attempts), and what one round over its pending deliveries did."""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass, field

from pollerd.config.base import SinkBase
from pollerd.core.backoff import Backoff
from pollerd.delivery.bounded import BoundedAttempts
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
    def attempts(self) -> BoundedAttempts:
        """Its attempts, each within the sink's ``timeout`` (where it has one)."""
        return BoundedAttempts(getattr(self.policy, "timeout", None))
