"""Every delivery attempt bounded by its sink's ``timeout``, enforced here rather than left to a
client library: a PostgreSQL server or an S3 host that stops answering (SIGSTOP, a hung
load balancer) fails the attempt when the time is up, so it is logged, retried with backoff and
counted, instead of holding the sink for as long as the server hangs.

An attempt past its time is cancelled and left to end on its own; the sink's next attempt waits
for it first (at most the timeout again), so two attempts of one sink never overlap."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from pollerd.sinks.base import DeliveryFailed


class BoundedAttempts:
    """One sink's attempts, each within ``timeout`` seconds (None: unbounded)."""

    def __init__(self, timeout: float | None) -> None:
        self.timeout = timeout
        self._stuck: asyncio.Task[Any] | None = None  # an attempt past its time, still ending

    async def run(self, attempt: Coroutine[Any, Any, None]) -> None:
        """Run the attempt; DeliveryFailed (to be retried) when it outlasts the timeout."""
        if self.timeout is None:
            await attempt
            return
        if self._stuck is not None and not self._stuck.done():
            await asyncio.wait({self._stuck}, timeout=self.timeout)
            if not self._stuck.done():
                attempt.close()
                raise DeliveryFailed(
                    f"the attempt before is still stuck after the timeout ({self.timeout:g} s)"
                )
        task = asyncio.ensure_future(attempt)
        try:
            done, _ = await asyncio.wait({task}, timeout=self.timeout)
        except asyncio.CancelledError:  # the daemon stops: the attempt goes with it
            task.cancel()
            raise
        if task in done:
            task.result()
            return
        task.cancel()
        task.add_done_callback(_consume)
        self._stuck = task
        raise DeliveryFailed(f"no answer within the sink's timeout ({self.timeout:g} s)")


def _consume(task: asyncio.Task[Any]) -> None:
    """An abandoned attempt's own end (its cancellation, or a late error) is no one's business."""
    if not task.cancelled():
        task.exception()
