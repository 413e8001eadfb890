"""Election events: what happened on the night (a race called, a canton finished, a ballot
cancelled), as facts derived from two consecutive versions of one resource.

A fact names its ``subject`` (the thing it is about, the same whichever resource tells it: a race,
a canton of one ballot, a ballot) and the ``state`` that subject reached. The store announces a fact
only when the subject's last announced state differs, so two files or two queries that report the
same call announce it once, and a call that flips back and forth announces each flip once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

_NAMESPACE = uuid.UUID("0b8f5f55-8a61-4d0f-9f0e-5f8cf4f0a7c3")

AP_TYPES = (
    "race_called",
    "call_changed",
    "call_retracted",
    "runoff",
    "race_complete",
    "call_pending",
    "call_conflict",
)
NUMBER_TYPES = (  # what moved between calls: only to sinks that list them or set numbers = true
    "votes_counted",
    "lead_changed",
    "expected_vote",
    "race_status_changed",
    "majority_changed",
    "canton_progress",
)
FSO_TYPES = ("canton_complete", "canton_reopened", "count_corrected", "result_final", "proposal_decided")
DC_TYPES = (
    "ballot_cancelled",
    "candidate_added",
    "candidate_withdrawn",
    "polling_station_changed",
    "election_withdrawn",
)
STORY_TYPES = AP_TYPES + FSO_TYPES + DC_TYPES  # what a sink subscribed to "election" gets
ELECTION_TYPES = STORY_TYPES + NUMBER_TYPES


@dataclass(frozen=True)
class Fact:
    """One election event as derived, before it is tied to the version it came from.

    ``scope``: what subscriptions filter on (``state``, ``office``, ``canton``); ``initial``: the
    resource's first version showed this state (it was so already, not just now); ``at``: the
    upstream's own time of it (ISO 8601), when the upstream says; ``by``: who made a call, ``ap``
    or ``desk`` (calls only).
    """

    type: str
    key: str
    subject: str
    state: str
    old: dict[str, Any] | None
    new: dict[str, Any] | None
    at: str | None = None
    scope: dict[str, Any] = field(default_factory=dict)
    initial: bool = False
    by: str | None = None

    def event_id(self, version_event_id: str) -> str:
        """Stable: the same fact of the same version always has the same id."""
        return str(uuid.uuid5(_NAMESPACE, f"{version_event_id}\0{self.type}\0{self.subject}"))

    def to_json(self, version_event_id: str) -> dict[str, Any]:
        """The election event as stored and as sinks receive it."""
        told = {
            "event_id": self.event_id(version_event_id),
            "type": self.type,
            "key": self.key,
            "subject": self.subject,
            "state": self.state,
            "at": self.at,
            "initial": self.initial,
            "scope": self.scope,
            "old": self.old,
            "new": self.new,
            "version_event_id": version_event_id,
        }
        return told if self.by is None else told | {"by": self.by}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Fact:
        """The inverse of to_json (the ids are computed again from the version's)."""
        return cls(
            type=data["type"],
            key=data["key"],
            subject=data["subject"],
            state=data["state"],
            old=data.get("old"),
            new=data.get("new"),
            at=data.get("at"),
            scope=data.get("scope") or {},
            initial=bool(data.get("initial")),
            by=data.get("by"),
        )


Rules = Callable[[str, Any, Any], list[Fact]]
"""A feed's rules: (resource id, previous version parsed or None, new version parsed) -> facts."""


def table(value: Any) -> dict[str, Any]:
    """``value`` where it is a JSON object, else an empty one (upstream JSON is not trusted)."""
    return value if isinstance(value, dict) else {}
