"""The interface every source kind implements: say what to watch, right now."""

from __future__ import annotations

from typing import Protocol

from pollerd.model import Resource


class DiscoveryFailed(Exception):
    """The source could not tell its current resources (its API is down or answered nonsense)."""


class Source(Protocol):
    """Tells the poll cycle which resources exist and where they are.

    ``discovery_interval`` is how often ``discover`` is called when nothing fails; ``None`` means
    only at start and when a failing resource forces a re-discovery.
    """

    name: str
    discovery_interval: float | None

    async def discover(self) -> list[Resource]:
        """The current resources; raise DiscoveryFailed when that cannot be known now."""
        ...
