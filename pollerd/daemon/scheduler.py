"""APScheduler 3 wrapper: one interval job per source, never overlapping, with jitter.

A cycle that outlasts its interval is no scheduler warning: the job is paused while its cycle
runs, and the next cycle starts as soon as an overrunning one ends (the source is then said to
run behind: ``pollerd_source_behind``, and on ``/status``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, JobEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from pollerd.telemetry.metrics import Metrics


class PollScheduler:
    """Runs each source's poll on its interval; an overrunning poll is followed at once by the
    next, never stacked."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._scheduler.add_listener(self._on_skipped, EVENT_JOB_MAX_INSTANCES)
        self.last_run_at: float | None = None
        self.last_started: float | None = None  # monotonic: when a poll last started
        self._behind: dict[str, bool] = {}

    def add(
        self,
        name: str,
        interval: float,
        jitter: float,
        poll: Callable[[], Awaitable[Any]],
        wake_in: Callable[[], float | None] = lambda: None,
    ) -> None:
        """Schedule ``poll`` every ``interval`` seconds (plus up to ``jitter``), first run now;
        sooner when ``wake_in`` says, after a cycle, that the next one is worth running earlier."""

        async def job() -> None:
            self.last_run_at = time.time()
            self.last_started = started = time.monotonic()
            self._scheduler.pause_job(name)  # no tick while the cycle runs: an overrun is no "skip"
            try:
                await poll()
            finally:
                took, soon = time.monotonic() - started, wake_in()
                # once APScheduler has counted this run as over (its callback was added first)
                current = asyncio.current_task()
                if current is not None:
                    current.add_done_callback(lambda _: self._cycle_ended(name, interval, took, soon))

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

    def _cycle_ended(self, name: str, interval: float, took: float, wake_in: float | None) -> None:
        """Time the cycle; the next one is due an interval after this one began, or now (it ran
        behind), or in ``wake_in`` seconds when that is sooner."""
        behind = took > interval
        self._behind[name] = behind
        self._metrics.cycle_seconds.labels(name).observe(took)
        self._metrics.source_behind.labels(name).set(1 if behind else 0)
        if behind:
            self._metrics.skipped_runs.labels(name).inc(int(took // interval))
        if self._scheduler.get_job(name) is None:
            return  # removed meanwhile (a reload, a lease lost)
        self._scheduler.resume_job(name)
        now = datetime.now(UTC)
        job = self._scheduler.get_job(name)
        soon = now if behind else None if wake_in is None else now + timedelta(seconds=wake_in)
        if soon is not None and (job.next_run_time is None or soon < job.next_run_time):
            self._scheduler.modify_job(name, next_run_time=soon)

    def behind(self, name: str) -> bool:
        """Whether the source's last cycle outlasted its interval (the next began at once)."""
        return self._behind.get(name, False)

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
