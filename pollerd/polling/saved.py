"""Which resource states a cycle must write: those that changed since they were last written.

An unchanged probe changes only ``last_success_at``; writing it for every resource every cycle
was 15% of the CPU at 10,000 resources. It is written again once it is ``refresh`` seconds staler
than the stored one (``pollerd status`` reads it), or with any other change.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

from pollerd.core.model import ResourceState

MIN_REFRESH = 60.0  # seconds


class SavedStates:
    """What was last written of each resource's state."""

    def __init__(self, interval: float) -> None:
        self._refresh = max(MIN_REFRESH, interval)
        self._written: dict[str, ResourceState] = {}

    def changed(self, states: Iterable[ResourceState]) -> list[ResourceState]:
        """The states that differ from what was last written."""
        return [state for state in states if self._differs(state)]

    def remember(self, states: Iterable[ResourceState]) -> None:
        """These states were written (or loaded) as they are now."""
        for state in states:
            self._written[state.resource_id] = copy.copy(state)

    def _differs(self, state: ResourceState) -> bool:
        written = self._written.get(state.resource_id)
        if written is None:
            return True
        before, now = vars(written), vars(state)
        if any(before[k] != now[k] for k in now if k != "last_success_at"):
            return True
        return (now["last_success_at"] or 0) - (before["last_success_at"] or 0) >= self._refresh
