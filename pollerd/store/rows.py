"""What the state holds, as the store hands it out, and how a resource state is stored."""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import structlog

from pollerd.core.masking import MASKED
from pollerd.core.model import Event, ResourceState, Strategy, Validators

DELIVERY_STATUSES = ("pending", "delivered", "filtered", "dead", "superseded")
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


def election_entry(body: Any, source: str, resource: str, created_at: float) -> dict[str, Any]:
    """One stored election event with where it came from and when it was committed."""
    data: dict[str, Any] = json.loads(body) if isinstance(body, str) else dict(body)
    return data | {"source": source, "resource": resource, "committed_at": created_at}


Told = tuple[str, str | None]  # a subject's last announced state, and the upstream's time of it


def announced(event: Event, last: Mapping[str, Told]) -> Event:
    """The event with only the election facts that are news. Left out: a fact whose subject was
    last announced in the same state (by another file or query of the source, or by this very
    fact before a restart), and a fact older, by the upstream's own time, than the last one
    announced of its subject (a file that lags behind another one of the same ballot: its
    "reopened" after the other's "finished again" is not news), and a fact that brings a subject
    never announced to the empty state (a conflict resolved that never was one).
    ``last``: subject -> (state, at)."""
    if not event.election:
        return event
    latest = dict(last)
    kept = []
    for fact in event.election:
        state, at = latest.get(fact.subject, (None, None))
        if state == fact.state or (state is None and not fact.state) or _before(fact.at, at):
            continue
        latest[fact.subject] = (fact.state, fact.at or at)
        kept.append(fact)
    return dataclasses.replace(event, election=tuple(kept))


def _before(at: str | None, then: str | None) -> bool:
    """Whether upstream time ``at`` is strictly before ``then`` (unknown times never are)."""
    if at is None or then is None:
        return False
    try:
        return datetime.fromisoformat(at.replace("Z", "+00:00")) < datetime.fromisoformat(
            then.replace("Z", "+00:00")
        )
    except ValueError:
        return False


def election_rows(source: str, event: Event, now: float) -> list[tuple[Any, ...]]:
    """The election_events rows of a committed event: (event_id, version_event_id, source,
    resource, type, subject, state, body, created_at)."""
    return [
        (
            data["event_id"],
            event.event_id,
            source,
            event.resource,
            data["type"],
            data["subject"],
            data["state"],
            json.dumps(data, ensure_ascii=False),
            now,
        )
        for data in event.election_events()
    ]


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


@dataclass
class Retention:
    """How long every version's payload is kept for redelivery after its commit
    (``daemon.redeliver_keep``; 0: only while a delivery is pending or dead, or it is current)."""

    keep_for: float = 0.0
    clock: Callable[[], float] = time.time

    def keeps(self, committed_at: float | None) -> bool:
        """Whether a version committed then is still kept for redelivery (nothing to release)."""
        return self.keep_for > 0 and committed_at is not None and self.clock() - committed_at < self.keep_for

    def kept_after(self) -> float:
        """Versions committed since then keep their payloads (infinity: none for that reason)."""
        return self.clock() - self.keep_for if self.keep_for > 0 else math.inf
