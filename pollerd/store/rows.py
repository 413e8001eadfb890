"""What the state holds, as the store hands it out, and how a resource state is stored."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from pollerd.core.masking import MASKED
from pollerd.core.model import Event, ResourceState, Strategy, Validators

DELIVERY_STATUSES = ("pending", "delivered", "dead", "superseded")


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
