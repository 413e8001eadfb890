"""The interface every sink implements: take one change, or say why not."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from pollerd.core.masking import MASKED
from pollerd.core.model import Event
from pollerd.versions.payload import Payload


class DeliveryFailed(Exception):
    """The sink could not take the event now; it will be retried (after ``retry_after``), unless
    ``permanent``: then it goes to the dead-letter list at once (a receiver's 404, say)."""

    def __init__(self, detail: str, retry_after: float | None = None, permanent: bool = False) -> None:
        super().__init__(MASKED(detail))  # a receiver's answer may repeat a token of its URL
        self.retry_after = retry_after
        self.permanent = permanent


class Sink(Protocol):
    """Receives each change once it is safe in the outbox.

    ``deliver`` must be idempotent by ``event.event_id``: after a crash, an event may come again.
    """

    name: str

    async def deliver(self, event: Event, payload: Payload, epoch: int | None = None) -> None:
        """Hand over the event and its payload; raise DeliveryFailed to be retried. The sink asks
        the payload for what it needs (the file, the reading, or only the change) and pays for
        no more.

        ``epoch``: where replicas share the work, the epoch of the lease this delivery is made
        under (it only grows), so a receiver can refuse a late write from an old holder."""
        ...

    async def close(self) -> None:
        """Release what the sink holds."""
        ...


@runtime_checkable
class GroupSink(Sink, Protocol):
    """A sink that takes what is due as one group (a chat channel posts a burst as one message).

    The deliverer waits ``group_window`` seconds after news before each round, so the changes of
    one poll cycle arrive together; a failure fails the whole group (all of it is retried)."""

    group_window: float

    async def deliver_group(self, events: list[Event], epoch: int | None = None) -> None:
        """Hand over the events, oldest first; raise DeliveryFailed to have all of them retried."""
        ...
