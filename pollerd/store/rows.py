"""What the state holds, as the store hands it out, and how a resource state is stored."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass
from typing import Any

import structlog

from pollerd.core.masking import MASKED
from pollerd.core.model import Event, ResourceState, Strategy, Validators

DELIVERY_STATUSES = ("pending", "delivered", "dead", "superseded")
_log = structlog.get_logger("pollerd.state")


@dataclass(frozen=True)
class PendingDelivery:
    """An event not yet acknowledged by one sink."""

    event: Event
    sink: str
    attempts: int
    next_attempt: float
    created_at: float = 0.0


@dataclass(frozen=True)
class DeliveryRow:
    """One delivery as ``pollerd deliveries`` lists it."""

    event_id: str
    source: str
    resource: str
    sequence: int
    status: str
    attempts: int
    last_error: str | None
    updated_at: float


def pending_delivery(sink: str, row: tuple[Any, ...]) -> PendingDelivery:
    """A pending delivery from its row: (event body, extension, attempts, next attempt, created)."""
    body, extension, attempts, next_attempt, created = row
    return PendingDelivery(
        Event.from_json(json.loads(body), extension), sink, attempts, next_attempt, created
    )


def status_counts(rows: list[tuple[Any, ...]]) -> dict[str, int]:
    """Deliveries by status from (status, count) rows, every status named (zero included)."""
    counts = dict.fromkeys(DELIVERY_STATUSES, 0)
    counts.update({str(status): int(count) for status, count in rows})
    return counts


def state_to_json(state: ResourceState) -> str:
    """A resource state as stored (its last error masked: upstream errors may echo a key)."""
    data = asdict(state)
    data["last_error"] = MASKED.optional(state.last_error)
    data["learned_strategy"] = state.learned_strategy.value if state.learned_strategy else None
    return json.dumps(data, separators=(",", ":"))


def state_from_json(text: str) -> ResourceState:
    """A stored resource state."""
    data: dict[str, Any] = json.loads(text)
    data["validators"] = Validators(**data["validators"])
    learned = data.get("learned_strategy")
    data["learned_strategy"] = Strategy(learned) if learned else None
    return ResourceState(**data)


def allocated(source: str, state: ResourceState, event: Event, sequence: int) -> Event:
    """The event under the sequence the store allocated. Only a state left behind the outbox makes
    it differ from the poller's: the state and the event are repaired (and it is said)."""
    if sequence == event.sequence:
        return event
    _log.warning(
        "sequence repaired: the outbox is ahead of the resource's state",
        source=source,
        resource=state.resource_id,
        expected=event.sequence,
        allocated=sequence,
    )
    state.sequence = sequence
    return dataclasses.replace(
        event, sequence=sequence, event_id=Event.make_id(source, state.resource_id, sequence, event.sha256)
    )
