"""What a sink takes, decided without I/O: every version (``events = ["versions"]``, the default),
or only versions that tell of subscribed election events, narrowed to those events and filtered by
office, state or canton."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from pollerd.config.base import SinkBase
from pollerd.core.election import ELECTION_TYPES, NUMBER_TYPES, STORY_TYPES, Fact
from pollerd.core.model import Event


@dataclass(frozen=True)
class Subscription:
    """A sink's subscription. A filter applies to the events that carry its field (an AP call
    has a state and an office, an FSO canton event a canton); events without it pass."""

    versions: bool
    types: frozenset[str]
    offices: frozenset[str] | None = None
    states: frozenset[str] | None = None
    cantons: frozenset[int] | None = None

    @classmethod
    def of(cls, policy: SinkBase) -> Subscription:
        """The subscription a sink's table asks for."""
        names = set(policy.events)
        types = names & set(ELECTION_TYPES)
        if "election" in names:
            types |= set(STORY_TYPES)
        if policy.numbers:
            types |= set(NUMBER_TYPES)
        return cls(
            versions="versions" in names,
            types=frozenset(types),
            offices=_set(policy.offices),
            states=_set(policy.states),
            cantons=None if policy.cantons is None else frozenset(policy.cantons),
        )

    def matches(self, fact: Fact) -> bool:
        """Whether the sink takes this election event."""
        scope = fact.scope
        return (
            fact.type in self.types
            and _passes(self.offices, scope.get("office"))
            and _passes(self.states, scope.get("state"))
            and _passes(self.cantons, scope.get("canton"))
        )

    def view(self, event: Event) -> Event | None:
        """The event as this sink receives it (its election events narrowed to the subscribed
        ones), or None when it takes nothing of it."""
        facts = tuple(fact for fact in event.election if self.matches(fact))
        if not self.versions and not facts:
            return None
        return event if facts == event.election else dataclasses.replace(event, election=facts)


def _set(values: list[str] | None) -> frozenset[str] | None:
    return None if values is None else frozenset(values)


def _passes(allowed: frozenset[object] | None, value: object) -> bool:
    return allowed is None or value is None or value in allowed
