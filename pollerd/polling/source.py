"""The interface every source kind implements: say what to watch, right now."""

from __future__ import annotations

from typing import Any, Protocol

from pollerd.core.hosts import HostPolicy
from pollerd.core.model import Resource


class DiscoveryFailed(Exception):
    """The source could not tell its current resources (its API is down or answered nonsense)."""


class Source(Protocol):
    """Tells the poll cycle which resources exist, where they are, and what a payload says.

    ``discovery_interval`` is how often ``discover`` is called when nothing fails; ``None`` means
    only at start and when a failing resource forces a re-discovery. ``policy`` bounds the hosts
    the source's URLs (and their redirects) may point at. A kind whose files tell of election
    events also has ``rules`` (``pollerd.core.election.Rules``); one whose upstream publishes
    empty files until the first results has ``empty_until_published = True`` (such a file is
    "not published yet": no version, no failure).
    """

    discovery_interval: float | None
    policy: HostPolicy

    async def discover(self, known: list[Resource]) -> list[Resource]:
        """The current resources; ``known`` are the last ones (so ids stay stable across moves).

        Raise DiscoveryFailed when that cannot be known now.
        """
        ...

    def details(self, document: Any) -> dict[str, Any] | None:
        """Fields for the event, read from a parsed JSON payload (runs in a worker thread)."""
        ...
