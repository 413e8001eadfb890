"""Does a schedule fit its request budget? Said at ``check-config`` and at start, not found out
on the night when a source falls silent.

An AP key's per-minute quota is shared by every query of every source using the key; a Democracy
Club host's budget by every request to the host. A source asks at least ``requests`` per cycle (one
per query, postcode, address or list); when its cycles would spend more than its share of the
budget, it is polled less often, evenly, instead of spending the budget in a burst and starving.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from pollerd.config.ap import ApSourceConfig
from pollerd.config.base import SourceBase
from pollerd.config.dc import DcSourceConfig
from pollerd.core.durations import format_duration
from pollerd.polling.quota import MARGIN


@dataclass(frozen=True)
class BudgetFit:
    """One source's part of one request budget."""

    source: str
    budget: str  # what the budget is, in words
    requests: int  # per cycle, at least
    interval: float  # configured
    limit: int  # requests per window, for every sharer together
    window: float
    share: float  # of the limit that is this source's (1.0 when it is alone)

    @property
    def allowance(self) -> float:
        """Requests per window this source may spend."""
        return self.limit * self.share

    @property
    def effective_interval(self) -> float:
        """How often the source can really poll: the configured interval, or longer."""
        return max(self.interval, spacing(self.requests, self.allowance, self.window))

    @property
    def limited(self) -> bool:
        """The schedule does not fit: the source will poll less often than configured."""
        return self.effective_interval > self.interval

    def words(self) -> str:
        """The arithmetic, for the person who wrote the schedule."""
        demand = round(self.requests * self.window / self.interval)
        window = format_duration(self.window)
        shared = "" if self.share == 1.0 else f", this source's share {self.allowance:.0f}"
        return (
            f"source {self.source}: {self.requests} requests every "
            f"{format_duration(self.interval)} = {demand} per {window}; {self.budget} "
            f"{self.limit} per {window}{shared}: each will be made about every "
            f"{format_duration(math.ceil(self.effective_interval))}"
        )


def spacing(requests: int, allowance: float, window: float) -> float:
    """The time between cycles of ``requests`` requests each that keeps every ``window`` (and the
    budget's margin) within ``allowance``: a cycle's requests go out together, so as many whole
    cycles as fit in the allowance share the window."""
    if requests <= 0:
        return 0.0
    span = window + MARGIN
    cycles = math.floor(allowance / requests)
    return span / cycles if cycles >= 1 else requests * span / allowance


def plan_budgets(sources: Iterable[SourceBase]) -> dict[str, BudgetFit]:
    """Each budgeted source's fit (the tightest, where a source spends from two budgets)."""
    demands: dict[str, list[tuple[SourceBase, int, int, float, str]]] = defaultdict(list)
    for source in sources:
        for key, requests, limit, window, what in _spending(source):
            demands[key].append((source, requests, limit, window, what))
    fits: dict[str, BudgetFit] = {}
    for sharers in demands.values():
        limit = min(limit for _, _, limit, _, _ in sharers)
        total = sum(requests * window / source.interval for source, requests, _, window, _ in sharers)
        for source, requests, _, window, what in sharers:
            share = (requests * window / source.interval) / total if total else 1.0
            fit = BudgetFit(
                source.name,
                what,
                requests,
                source.interval,
                limit,
                window,
                1.0 if len(sharers) == 1 else share,
            )
            known = fits.get(source.name)
            if known is None or fit.effective_interval > known.effective_interval:
                fits[source.name] = fit
    return fits


def _spending(source: SourceBase) -> Iterable[tuple[str, int, int, float, str]]:
    """(budget key, requests per cycle, limit, window, words) for each budget the source uses."""
    if isinstance(source, ApSourceConfig) and source.api_key is not None:
        key = hashlib.sha256(source.api_key.get_secret_value().encode()).hexdigest()
        limit, window = source.quota_per_minute, source.quota_window
        yield f"ap:{key}", len(source.queries), limit, window, "the AP key's quota is"
    if isinstance(source, DcSourceConfig):
        limit, window = source.request_budget
        api = len(source.postcodes) + len(source.addresses) + (1 if source.elections else 0)
        per_host: dict[str, int] = defaultdict(int)
        per_host[urlsplit(source.api).netloc] += api
        if source.candidates:
            per_host[urlsplit(source.candidates_api).netloc] += 1
        for host, requests in per_host.items():
            if requests:
                yield f"host:{host}", requests, limit, window, f"the budget for {host} is"
