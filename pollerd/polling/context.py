"""What every poller is given by the daemon: its HTTP client, durable state, request budgets,
metrics, and a clock."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pollerd.polling.fetch import HttpClient
from pollerd.polling.quota import QuotaBudgets
from pollerd.polling.tally import SourceTally
from pollerd.store.blobs import BlobStore
from pollerd.store.protocol import StateStore
from pollerd.telemetry.alerts import Alerts
from pollerd.telemetry.metrics import Metrics
from pollerd.versions.readings import Readings
from pollerd.versions.stored import VersionReader


@dataclass(frozen=True)
class PollContext:
    """The daemon's shared parts, as one value (``on_change`` wakes the delivery loops)."""

    client: HttpClient
    store: StateStore
    blobs: BlobStore
    metrics: Metrics
    on_change: Callable[[], None]
    clock: Callable[[], float] = field(default=time.time)
    budgets: QuotaBudgets = field(default_factory=QuotaBudgets)
    alerts: Alerts = field(default_factory=Alerts)
    readings: Readings = field(default_factory=Readings)  # shared with the deliverer
    _tallies: dict[str, SourceTally] = field(default_factory=dict)

    @property
    def versions(self) -> VersionReader:
        """Reads committed versions back: their readings held in memory, else their payloads."""
        return VersionReader(self.readings, self.blobs.local, asyncio.to_thread)

    def tally(self, source: str, kind: str) -> SourceTally:
        """The source's tally: one per source for the daemon's life (a reload keeps its figures)."""
        tally = self._tallies.get(source)
        if tally is None or tally.status().kind != kind:
            tally = self._tallies[source] = SourceTally(source, kind, self.metrics, self.alerts)
        return tally
