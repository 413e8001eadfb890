"""What every poller is given by the daemon: its HTTP client, durable state, metrics, and a clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pollerd.polling.fetch import HttpClient
from pollerd.store.blobs import BlobStore
from pollerd.store.protocol import StateStore
from pollerd.telemetry.metrics import Metrics


@dataclass(frozen=True)
class PollContext:
    """The daemon's shared parts, as one value (``on_change`` wakes the delivery loops)."""

    client: HttpClient
    store: StateStore
    blobs: BlobStore
    metrics: Metrics
    on_change: Callable[[], None]
    clock: Callable[[], float] = field(default=time.time)
