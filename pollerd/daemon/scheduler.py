"""APScheduler 3 wrapper: one interval job per source, never overlapping, with jitter."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, JobEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from pollerd.telemetry.metrics import Metrics


class PollScheduler:
    """Runs each source's poll on its interval; an overrunning poll is skipped, not stacked."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._scheduler.add_listener(self._on_skipped, EVENT_JOB_MAX_INSTANCES)
        self.last_run_at: float | None = None
        self.last_started: float | None = None  # monotonic: when a poll last started

    def add(self, name: str, interval: float, jitter: float, poll: Callable[[], Awaitable[Any]]) -> None:
        """Schedule ``poll`` every ``interval`` seconds (plus up to ``jitter``), first run now."""

        async def job() -> None:
            self.last_run_at = time.time()
            self.last_started = time.monotonic()
            await poll()

        self._scheduler.add_job(
            job,
            IntervalTrigger(seconds=interval, jitter=jitter or None),
            id=name,
            name=name,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
            next_run_time=datetime.now(UTC),
        )

    def remove(self, name: str) -> None:
        """Stop scheduling a source (a running poll finishes)."""
        if self._scheduler.get_job(name) is not None:
            self._scheduler.remove_job(name)

    @property
    def scheduled(self) -> int:
        """How many sources are scheduled (none on a replica that holds no lease)."""
        return len(self._scheduler.get_jobs())

    def next_run(self, name: str) -> datetime | None:
        """When a source's next poll is due."""
        job = self._scheduler.get_job(name)
        return None if job is None else job.next_run_time

    def start(self) -> None:
        """Start firing jobs (needs a running event loop)."""
        self._scheduler.start()

    def pause(self) -> None:
        """Stop firing new jobs; running ones go on (APScheduler's shutdown would cancel them)."""
        if self._scheduler.running:
            self._scheduler.pause()

    def shutdown(self) -> None:
        """Stop for good (after the running jobs have been drained)."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    def _on_skipped(self, event: JobEvent) -> None:
        self._metrics.skipped_runs.labels(event.job_id).inc()
