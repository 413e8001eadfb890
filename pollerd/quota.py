"""Client-side request budgets: at most N requests in any window (a minute per API key for AP,
150 per 5 minutes per host for Democracy Club), shared by everything that spends them, so pollerd
never exceeds a quota by itself."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import deque
from collections.abc import Callable

WINDOW = 60.0


class QuotaBudget:
    """A sliding window of request times, and a pause the upstream can impose."""

    def __init__(self, limit: int, window: float = WINDOW,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit  # requests per window (a minute by default)
        self.window = window
        self._clock = clock
        self._sent: deque[float] = deque()
        self._paused_until = 0.0

    def wait_needed(self) -> float:
        """Seconds until one more request fits (0: now)."""
        now = self._clock()
        while self._sent and self._sent[0] <= now - self.window:
            self._sent.popleft()
        wait = self._paused_until - now
        if len(self._sent) >= self.limit:
            wait = max(wait, self._sent[0] + self.window - now)
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
    """One budget per key (an API key, a host); one configured with different limits gets the
    smallest."""

    def __init__(self) -> None:
        self._budgets: dict[str, QuotaBudget] = {}

    def for_key(self, key: str, per_window: int, window: float = WINDOW) -> QuotaBudget:
        """The budget of ``key`` (held by its hash, never the key itself)."""
        digest = hashlib.sha256(f"{window}\0{key}".encode()).hexdigest()
        budget = self._budgets.get(digest)
        if budget is None:
            budget = self._budgets[digest] = QuotaBudget(per_window, window)
        budget.limit = min(budget.limit, per_window)
        return budget
