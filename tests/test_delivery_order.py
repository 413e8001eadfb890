"""The delivery decisions as tables: per-resource order, coalescing, giving up."""

from __future__ import annotations

from datetime import UTC, datetime

from pollerd.config import StdoutSinkConfig
from pollerd.core.model import Event, Validators
from pollerd.delivery.order import RoundOrder, Settled, expired, newest_per_resource
from pollerd.store.rows import PendingDelivery


def pending(resource: str, sequence: int, next_attempt: float = 0.0, attempts: int = 0) -> PendingDelivery:
    event = Event(
        Event.make_id("s", resource, sequence, "a" * 64),
        "s",
        resource,
        "https://example.org/x",
        sequence,
        "a" * 64,
        None,
        1,
        None,
        Validators(),
        datetime(2023, 10, 22, tzinfo=UTC),
        "json",
    )
    return PendingDelivery(event, "out", attempts, next_attempt, created_at=100.0)


def test_a_waiting_retry_holds_back_later_versions_of_its_resource_only() -> None:
    order = RoundOrder(now=10.0)
    waiting, later, other = pending("r", 1, next_attempt=50.0), pending("r", 2), pending("q", 1)
    assert [order.may_try(i) for i in (waiting, later, other)] == [False, False, True]
    assert order.next_due == 50.0


def test_a_retry_blocks_the_rest_a_dead_letter_does_not() -> None:
    order = RoundOrder(now=10.0)
    first, second = pending("r", 1), pending("r", 2)
    assert order.may_try(first)
    order.settled(first, Settled.DEAD)
    assert order.may_try(second)
    order.settled(second, Settled.RETRY)
    assert not order.may_try(pending("r", 3))


def test_coalescing_keeps_the_newest_version_of_each_resource() -> None:
    items = [pending("r", 1), pending("q", 1), pending("r", 2), pending("r", 3)]
    keep, superseded = newest_per_resource(items)
    assert [(i.event.resource, i.event.sequence) for i in keep] == [("q", 1), ("r", 3)]
    assert [i.event.sequence for i in superseded] == [1, 2]


def test_giving_up_after_max_attempts_or_max_age() -> None:
    policy = StdoutSinkConfig.model_validate(
        {"kind": "stdout", "name": "out", "max_attempts": 3, "max_age": "60s"}
    )
    assert expired(policy, pending("r", 1, attempts=2), now=120.0) is None
    assert (
        expired(policy, pending("r", 1, attempts=3), now=120.0) == "gave up after 3 attempts (max_attempts)"
    )
    assert expired(policy, pending("r", 1), now=161.0) == "older than max_age (60s)"
