"""Garbage collection kept off the path of a change.

A national AP snapshot is millions of objects that live all night, and CPython's full collection
walks every one of them (hundreds of milliseconds at 40 MB) whenever enough new objects have
survived: a pause inside whatever poll or delivery runs then. So once a cycle is over, young
garbage is collected (the young generations only) and what survived is frozen (moved out of the
collector's sight, at no cost). Every ``full_every`` seconds, once a cycle is over and nothing
waits to be delivered, everything is collected once, so cyclic garbage that grew old is not kept
for the night, and frozen again. A reading holds no reference cycles: a frozen race replaced by a
newer one is freed by its reference count as before.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

FULL_EVERY = 600.0  # seconds


class Collector:
    """When the garbage collector may run long: between cycles, not inside one."""

    def __init__(self, full_every: float = FULL_EVERY, clock: Callable[[], float] = time.monotonic) -> None:
        self._full_every = full_every
        self._clock = clock
        self._last_full = clock()

    def start(self) -> None:
        """Collect what the start left, and freeze what lives on (modules, the loaded state)."""
        gc.collect()
        gc.freeze()
        self._last_full = self._clock()

    def cycle_over(self, idle: bool) -> None:
        """A cycle ended (``idle``: nothing waits to be delivered): collect the young garbage, or
        everything when a full collection is due and nothing waits, then freeze the survivors."""
        if idle and self._clock() - self._last_full >= self._full_every:
            gc.unfreeze()
            gc.collect()
            self._last_full = self._clock()
        else:
            gc.collect(1)
        gc.freeze()

    def close(self) -> None:
        """Give the frozen objects back to the collector."""
        gc.unfreeze()
