"""``StateStore``: what the poll cycle and the delivery loop need from durable state, whatever
engine holds it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pollerd.core.model import Download, Event, Resource, ResourceState
from pollerd.desk.book import Decision
from pollerd.store.rows import PendingDelivery, Retention


class StateRefused(Exception):
    """The state failed or refused a write (the database is unreachable, or the writer's lease
    was lost): the whole cycle fails, nothing half-done is announced, and it is said."""


class StateUnavailable(StateRefused):
    """The database cannot be reached now; the work is retried when it can."""


@dataclass(frozen=True)
class Change:
    """One new version to commit: the resource's state once it is committed, its event, the
    sinks it goes to, and the download that holds its payload; ``settles``: the desk's decision
    it announces, recorded as applied in the same transaction (never twice)."""

    source: str
    state: ResourceState
    event: Event
    sinks: list[str]
    download: Download
    settles: Decision | None = None


Adopt = Callable[[list[Download]], list[Path | Exception]]  # ``BlobStore.adopt_all``


class StateStore(Protocol):
    """Resource states, discoveries, events and the outbox."""

    retention: Retention  # how long every version's payload is kept for redelivery

    async def load_states(self, source: str) -> dict[str, ResourceState]:
        """Every resource state of a source, by resource id."""

    async def save_states(self, source: str, states: list[ResourceState]) -> None:
        """Persist resource states (validators, backoff, errors) in one transaction."""

    async def record_change(
        self,
        source: str,
        state: ResourceState,
        event: Event,
        sinks: list[str],
        payload: Path,
        settles: Decision | None = None,
    ) -> Event:
        """Atomically: the resource's new state, the event, and one pending delivery per sink.

        ``payload`` is the version's bytes, adopted into the store's payloads already (an engine
        that keeps payloads in the database stores them in the same transaction). The sequence
        number is allocated inside that transaction: past every event already stored
        for the resource, so a state that disagrees with the outbox never reuses a number. The
        event as committed is returned (its sequence and id differ from ``event``'s only then).
        """

    async def record_changes(self, changes: list[Change], adopt: Adopt) -> list[Event | Exception]:
        """``record_change`` of each change, its download adopted first with ``adopt`` (in a
        worker thread), as few trips as the engine allows; in the order given, each change's
        event as committed or what kept it from being committed (the others go on)."""

    async def add_decision(self, decision: Decision) -> Decision:
        """Keep a new decision of the desk (pending until its source's poller applies it)."""

    async def decisions(self, source: str | None, status: str | None = None) -> list[Decision]:
        """The desk's decisions of a source (None: all), oldest first; only those of ``status``."""

    async def latest_told(self, source: str, prefix: str) -> dict[str, dict[str, Any]]:
        """The last election event of each subject starting with ``prefix``, by subject."""

    async def settle_decision(self, decision: Decision) -> bool:
        """Record a decision refused (one applied is settled with its change); False when it
        was settled already."""

    async def load_discovery(self, source: str) -> list[Resource] | None:
        """The last good discovery of a source, if any."""

    async def save_discovery(self, source: str, resources: list[Resource]) -> None:
        """Remember a good discovery, so an API outage or a restart keeps the known URLs."""

    async def pending_deliveries(self, sink: str, limit: int) -> list[PendingDelivery]:
        """Pending deliveries of a sink in event order (per resource: sequence order)."""

    async def mark_delivered(self, event_ids: list[str], sink: str) -> None:
        """The sink acknowledged these events (one transaction)."""

    async def mark_filtered(self, event_ids: list[str], sink: str) -> None:
        """The sink's subscription leaves these events out: settled, never sent."""

    async def mark_retry(self, event_id: str, sink: str, error: str, next_attempt: float) -> None:
        """The sink failed; try again at ``next_attempt``."""

    async def mark_dead(self, event_id: str, sink: str, error: str) -> None:
        """The sink refused the event for good (or it ran out of attempts): the dead-letter list."""

    async def mark_superseded(self, event_ids: list[str], sink: str) -> None:
        """Newer versions of these events' resources replace them for this sink (coalescing)."""

    async def outbox_bytes(self, sink: str) -> int:
        """Payload bytes of the sink's pending deliveries."""

    async def delivery_counts(self, sink: str) -> dict[str, int]:
        """Deliveries of a sink by status."""

    async def outbox_depth(self, sink: str) -> int:
        """How many deliveries the sink has pending."""

    async def blob_in_use(self, sha256: str) -> bool:
        """Whether a payload is still needed: a pending delivery or a resource's current content."""

    async def latest_election_events(
        self, limit: int, source: str, numbers: bool = False
    ) -> list[dict[str, Any]]:
        """The newest stories of a source (``numbers``: the newest numbers between them), newest
        first (each with its source, resource and commit time): one busy source never pushes
        another's off the page."""

    async def committed_between(self, after: float, before: float) -> list[str]:
        """The payloads of the versions committed in [after, before) (the retention's sweep)."""

    async def note_source(self, source: str, what: str, text: str | None) -> None:
        """Keep what ``status`` tells of a source: why it stopped for good (``stopped``), why its
        API could not be asked (``discovery``); ``None``: that is over."""

    async def close(self) -> None:
        """Release the store."""
