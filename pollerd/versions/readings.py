"""Each version's reading, held in memory: a payload is parsed once, when it comes, and the
election rules, the sinks and the next version's rules take that reading instead of the bytes."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

DEFAULT_CAPACITY = 64 * 1024 * 1024  # payload bytes whose readings are held (a reading is several times more)


class Readings:
    """The newest readings by payload sha256, the least recently used let go first once their
    payloads add up to more than ``capacity`` bytes (a reading takes several times its bytes;
    readings of one AP query's versions share every race that did not change)."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._capacity = capacity
        self._held: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        self._weight = 0

    def get(self, sha256: str | None) -> Any:
        """The reading of that version, or None when it is not held."""
        if sha256 is None or sha256 not in self._held:
            return None
        self._held.move_to_end(sha256)
        return self._held[sha256][0]

    def put(self, sha256: str, reading: Any, weight: int) -> None:
        """Hold a version's reading (``weight``: the bytes it was read from)."""
        if reading is None:
            return
        old = self._held.pop(sha256, None)
        if old is not None:
            self._weight -= old[1]
        self._held[sha256] = (reading, weight)
        self._weight += weight
        while self._weight > self._capacity and len(self._held) > 2:
            _, (_, dropped) = self._held.popitem(last=False)
            self._weight -= dropped
