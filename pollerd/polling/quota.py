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
MARGIN = 1.0  # seconds added to the window: the upstream's clock and ours are not one clock
_SETTLE_POLL = 0.05


class QuotaBudget:
    """At most ``limit`` requests in any ``window``, counted the way no upstream can disagree with.

    The upstream counts a request at some moment between our sending it and our having its whole
    answer. So a request counts here from the moment it is taken until ``window`` (plus a small
    margin) after its answer is complete: whenever the upstream counted it, it has left the
    upstream's window before it leaves ours.
    """

    def __init__(
        self,
        limit: int,
        window: float = WINDOW,
        clock: Callable[[], float] = time.monotonic,
        margin: float = MARGIN,
    ) -> None:
        self.limit = limit  # requests per window (a minute by default)
        self.window = window
        self.margin = margin
        self._clock = clock
        self._settled: deque[float] = deque()  # when each counted request's answer was complete
        self._elsewhere: deque[float] = deque()  # the same, of requests other replicas made
        self._unshared: list[float] = []  # settled here, not yet told to the other replicas
        self._in_flight = 0
        self._paused_until = 0.0

    def wait_needed(self) -> float:
        """Seconds until one more request fits (0: now)."""
        now = self._clock()
        for settled in (self._settled, self._elsewhere):
            while settled and settled[0] <= now - self.window - self.margin:
                settled.popleft()
        wait = self._paused_until - now
        if self._in_flight + len(self._settled) + len(self._elsewhere) >= self.limit:
            oldest = [settled[0] for settled in (self._settled, self._elsewhere) if settled]
            if oldest:
                wait = max(wait, min(oldest) + self.window + self.margin - now)
            else:  # every request of the window is still in flight: one must finish first
                wait = max(wait, _SETTLE_POLL)
        return max(wait, 0.0)

    def try_take(self) -> Spend | None:
        """Spend one request now if the budget allows it (settle it when its answer is in)."""
        if self.wait_needed() > 0:
            return None
        return self._spend()

    async def take(self) -> Spend:
        """Spend one request, waiting until the budget allows it."""
        wait = self.wait_needed()
        while wait > 0:
            await asyncio.sleep(wait)
            wait = self.wait_needed()
        return self._spend()

    def pause(self, seconds: float) -> None:
        """Send nothing for ``seconds`` (the upstream said the quota is spent)."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    @property
    def used(self) -> int:
        """Requests counted against the window now (in flight or recently answered)."""
        self.wait_needed()
        return self._in_flight + len(self._settled) + len(self._elsewhere)

    def unshared(self) -> list[float]:
        """The ages (seconds) of the requests settled here since the last call, for the replicas
        that may spend this budget next."""
        now = self._clock()
        ages = [now - settled for settled in self._unshared]
        self._unshared = []
        return ages

    def not_shared(self, ages: list[float]) -> None:
        """Telling the other replicas failed: tell them these (from ``unshared``) next time."""
        now = self._clock()
        self._unshared[:0] = [now - age for age in ages]

    def spent_elsewhere(self, ages: list[float]) -> None:
        """The requests other replicas made from this budget (ages in seconds), replacing what was
        known of them: they count against the window here too."""
        now = self._clock()
        self._elsewhere = deque(sorted(now - age for age in ages))

    def _spend(self) -> Spend:
        self._in_flight += 1
        return Spend(self)

    def _settle(self) -> None:
        self._in_flight -= 1
        self._settled.append(self._clock())
        self._unshared.append(self._settled[-1])


class Spend:
    """One request counted against a budget; settled (once) when its answer is complete or it
    failed. A context manager around the request."""

    def __init__(self, budget: QuotaBudget) -> None:
        self._budget: QuotaBudget | None = budget

    def settle(self) -> None:
        """The request is over; its window starts now."""
        if self._budget is not None:
            self._budget._settle()
            self._budget = None

    def __enter__(self) -> Spend:
        return self

    def __exit__(self, *_: object) -> None:
        self.settle()


class QuotaBudgets:
    """One budget per key (an API key, a host); one configured with different limits gets the
    smallest.

    With several replicas, the sources that spend a budget move between replicas; each replica
    tells the others (through the database) what it spent, by the budget's digest, and counts what
    they spent, so the budget holds across a takeover too."""

    def __init__(self) -> None:
        self._budgets: dict[str, QuotaBudget] = {}
        self._elsewhere: dict[str, list[float]] = {}  # spent by others, for budgets not made yet
        self._told_at = time.monotonic()

    def for_key(self, key: str, per_window: int, window: float = WINDOW) -> QuotaBudget:
        """The budget of ``key`` (held by its hash, never the key itself)."""
        digest = hashlib.sha256(f"{window}\0{key}".encode()).hexdigest()
        budget = self._budgets.get(digest)
        if budget is None:
            budget = self._budgets[digest] = QuotaBudget(per_window, window)
            since = time.monotonic() - self._told_at
            budget.spent_elsewhere([age + since for age in self._elsewhere.pop(digest, [])])
        budget.limit = min(budget.limit, per_window)
        return budget

    def unshared(self) -> dict[str, list[float]]:
        """Budget digest -> the ages of the requests made here since the last call."""
        return {digest: ages for digest, budget in self._budgets.items() if (ages := budget.unshared())}

    def not_shared(self, spent: dict[str, list[float]]) -> None:
        """Telling the others failed: keep these (from ``unshared``) for the next time."""
        for digest, ages in spent.items():
            self._budgets[digest].not_shared(ages)

    def spent_elsewhere(self, spent: dict[str, list[float]]) -> None:
        """Budget digest -> the ages of the requests other replicas made in the last window(s)."""
        for digest, budget in self._budgets.items():
            budget.spent_elsewhere(spent.get(digest, []))
        self._elsewhere = {digest: ages for digest, ages in spent.items() if digest not in self._budgets}
        self._told_at = time.monotonic()
