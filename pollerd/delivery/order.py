"""The delivery decisions, without I/O: which pending deliveries a round may try (per resource,
in sequence order, a version never overtaking one that waits for a retry), which ones coalescing
supersedes, and why a delivery must not be tried again."""

from __future__ import annotations

from enum import StrEnum

from pollerd.config.base import SinkBase
from pollerd.store.rows import PendingDelivery


class Settled(StrEnum):
    """What one delivery attempt came to."""

    DELIVERED = "delivered"
    RETRY = "retry"  # tried again later; later versions of the resource wait behind it
    DEAD = "dead"  # dead-lettered: settled, so later versions go ahead
    FILTERED = "filtered"  # nothing in it for this sink's subscription: settled, never sent


class RoundOrder:
    """The order of one round over a sink's pending deliveries (oldest event first)."""

    def __init__(self, now: float) -> None:
        self.now = now
        self._blocked: set[tuple[str, str]] = set()
        self.next_due: float | None = None  # the earliest retry that is still waiting

    def may_try(self, item: PendingDelivery) -> bool:
        """Whether the delivery is due and no earlier version of its resource waits."""
        key = _resource(item)
        if key in self._blocked:
            return False
        if item.next_attempt > self.now:
            self._blocked.add(key)  # a later version must not overtake this one
            self.next_due = (
                item.next_attempt if self.next_due is None else min(self.next_due, item.next_attempt)
            )
            return False
        return True

    def settled(self, item: PendingDelivery, outcome: Settled) -> None:
        """An attempt came to ``outcome``: a retry holds back the resource's later versions."""
        if outcome is Settled.RETRY:  # a dead one is settled: the next may follow
            self._blocked.add(_resource(item))


def newest_per_resource(
    pending: list[PendingDelivery],
) -> tuple[list[PendingDelivery], list[PendingDelivery]]:
    """(the newest pending version of each resource, in order; the older ones it supersedes)."""
    newest: dict[tuple[str, str], PendingDelivery] = {}
    for item in pending:
        newest[_resource(item)] = item
    keep = {id(item) for item in newest.values()}
    return [i for i in pending if id(i) in keep], [i for i in pending if id(i) not in keep]


def expired(policy: SinkBase, item: PendingDelivery, now: float) -> str | None:
    """Why the delivery must not be tried again, if it must not."""
    if policy.max_attempts is not None and item.attempts >= policy.max_attempts:
        return f"gave up after {item.attempts} attempts (max_attempts)"
    if policy.max_age is not None and item.created_at and now - item.created_at > policy.max_age:
        return f"older than max_age ({policy.max_age:g}s)"
    return None


def _resource(item: PendingDelivery) -> tuple[str, str]:
    return item.event.source, item.event.resource
