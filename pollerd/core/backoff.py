"""Retry timing: capped exponential backoff with jitter, and Retry-After parsing."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

MAX_RETRY_AFTER = 3600.0


@dataclass(frozen=True)
class Backoff:
    """Delay before attempt ``failures + 1``: base * 2^(failures-1), capped, with jitter."""

    base: float
    cap: float

    def delay(
        self,
        failures: int,
        retry_after: float | None = None,
        rand: Callable[[], float] = random.random,
    ) -> float:
        """Seconds to wait; a server's Retry-After wins (a little later, never earlier)."""
        if retry_after is not None:
            return min(retry_after, MAX_RETRY_AFTER) * (1.0 + 0.1 * rand())
        exponent = max(failures - 1, 0)
        ceiling = self.cap if exponent >= 63 else min(self.cap, self.base * 2.0**exponent)
        return ceiling * (0.5 + 0.5 * rand())


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None if absent or bad."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
