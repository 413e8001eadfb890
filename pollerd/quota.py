"""Client-side request budgets: at most N requests in any minute per API key, shared by every
query and source that uses the key, so pollerd never exceeds a quota by itself."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import deque
from collections.abc import Callable

WINDOW = 60.0


class QuotaBudget:
    """A sliding one-minute window of request times, and a pause the upstream can impose."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._sent: deque[float] = deque()
        self._paused_until = 0.0

    def wait_needed(self) -> float:
        """Seconds until one more request fits (0: now)."""
        now = self._clock()
        while self._sent and self._sent[0] <= now - WINDOW:
            self._sent.popleft()
        wait = self._paused_until - now
        if len(self._sent) >= self.per_minute:
            wait = max(wait, self._sent[0] + WINDOW - now)
        return max(wait, 0.0)

    def try_take(self) -> bool:
        """Spend one request now if the budget allows it."""
        if self.wait_needed() > 0:
            return False
        self._sent.append(self._clock())
        return True

    async def take(self) -> None:
        """Spend one request, waiting until the budget allows it."""
        wait = self.wait_needed()
        while wait > 0:
            await asyncio.sleep(wait)
            wait = self.wait_needed()
        self._sent.append(self._clock())

    def pause(self, seconds: float) -> None:
        """Send nothing for ``seconds`` (the upstream said the quota is spent)."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)


class QuotaBudgets:
    """One budget per key; a key configured with different limits gets the smallest."""

    def __init__(self) -> None:
        self._budgets: dict[str, QuotaBudget] = {}

    def for_key(self, key: str, per_minute: int) -> QuotaBudget:
        """The budget of ``key`` (held by its hash, never the key itself)."""
        digest = hashlib.sha256(key.encode()).hexdigest()
        budget = self._budgets.get(digest)
        if budget is None:
            budget = self._budgets[digest] = QuotaBudget(per_minute)
        budget.per_minute = min(budget.per_minute, per_minute)
        return budget
