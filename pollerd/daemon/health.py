"""Is the daemon alive and making progress? The event loop's heartbeat, the scheduler's last
started poll and the long-running tasks' health answer it, for ``/healthz``, for the systemd
watchdog and for ``/readyz``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from pollerd.daemon.scheduler import PollScheduler
from pollerd.telemetry.tasks import TaskHealth

HEARTBEAT = 0.5
LAG_LIMIT = 5.0


class Health:
    """Answers "what is wrong, if anything" from the heartbeat and the scheduler's progress."""

    def __init__(
        self,
        scheduler: PollScheduler,
        stall_after: float,
        clock: Callable[[], float] = time.monotonic,
        tasks: TaskHealth | None = None,
    ) -> None:
        self._scheduler = scheduler
        self._tasks = tasks
        self.stall_after = stall_after
        self._clock = clock
        self._started = clock()
        self._quiet_since = self._started  # when there was last nothing to poll
        self._beat = clock()
        self.worst_lag = 0.0

    async def heartbeat(self) -> None:
        """Beat every HEARTBEAT seconds, noting how late each beat came (a blocked loop)."""
        while True:
            expected = self._clock() + HEARTBEAT
            await asyncio.sleep(HEARTBEAT)
            now = self._clock()
            self.worst_lag = max(self.worst_lag * 0.9, now - expected)
            self._beat = now

    def problem(self) -> str | None:
        """Why the daemon is not healthy now, or None."""
        now = self._clock()
        if now - self._beat > LAG_LIMIT:
            return f"the event loop has not run for {now - self._beat:.0f}s"
        if self._scheduler.scheduled == 0:  # a standby replica: idle, not stuck
            self._quiet_since = now
            return None if self._tasks is None else self._tasks.problem()
        started = self._scheduler.last_started
        since = now - max(started if started is not None else self._started, self._quiet_since)
        if since > self.stall_after:
            what = "no poll has run yet after" if started is None else "no poll has started for"
            return f"{what} {since:.0f}s (stall_after {self.stall_after:g}s): polls are stuck"
        return None if self._tasks is None else self._tasks.problem()


def default_stall_after(intervals: list[float]) -> float:
    """Three of the longest interval, and at least a minute."""
    return max(60.0, 3 * max(intervals, default=0.0))
