"""The scheduled polls of the running daemon: one job per source, a failing poll reported and
tried again next interval, and a drain that lets the polls in flight finish (or gives up on them)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from pollerd.core.model import PollReport
from pollerd.daemon.scheduler import PollScheduler
from pollerd.polling.poller import Poller
from pollerd.store.postgres.leases import Fenced
from pollerd.telemetry.tasks import TaskHealth


class PollRuns:
    """Runs each source's poll on the scheduler; knows which polls are in flight."""

    def __init__(
        self,
        scheduler: PollScheduler,
        tasks: TaskHealth,
        on_fenced: Callable[[str], Awaitable[None]] | None = None,
        after_cycle: Callable[[], None] | None = None,
    ) -> None:
        self._scheduler = scheduler
        self._tasks = tasks
        self._on_fenced = on_fenced  # a source's write refused: its lease was lost
        self._polls: dict[str, asyncio.Task[PollReport]] = {}
        self._after_cycle = after_cycle  # between cycles: the garbage collector's moment

    def schedule(self, poller: Poller) -> None:
        """Poll the source every interval (with its jitter) from when the scheduler starts."""
        name = poller.name
        poller.patience = 0.9 * poller.config.interval  # a slow resource must not make it overrun

        async def run() -> None:
            task = asyncio.ensure_future(poller.poll())
            self._polls[name] = task
            try:
                await task
            except asyncio.CancelledError:
                if not task.cancelled():
                    raise
                # the drain gave up on this poll: said once in its "drained" line
            except Fenced:
                if self._on_fenced is not None:
                    await self._on_fenced(name)
            except Exception as exc:  # the next interval tries again; /healthz says so meanwhile
                self._tasks.failed(f"poll:{name}", exc)
            else:
                report = task.result()
                # a poll that failed on a write (disk full) is well again only once it has
                # written: a cycle that wrote nothing (its resource waits out a backoff) proves
                # nothing, however many come
                if self._tasks.failing_on_write(f"poll:{name}"):
                    if report.changed or (report.wrote and not report.failing):
                        self._tasks.recovered(f"poll:{name}")
                elif not report.idle:
                    self._tasks.recovered(f"poll:{name}")
            finally:
                if self._polls.get(name) is task:
                    del self._polls[name]
                if self._after_cycle is not None:
                    self._after_cycle()

        self._scheduler.add(name, poller.config.interval, poller.config.jitter, run, poller.wake_in)

    async def unschedule(self, name: str, grace: float) -> None:
        """Stop polling a source; a poll in flight gets ``grace`` seconds to finish."""
        self._scheduler.remove(name)
        if name in self._polls:
            await asyncio.wait([self._polls[name]], timeout=grace)

    async def drain(self, pollers: list[Poller], grace: float) -> int:
        """Schedule nothing more; let the polls in flight (stragglers too) finish within
        ``grace``, then cancel the rest quietly; how many were cancelled. A cycle that ends while
        it is waited for may leave a slow resource running on its own (a straggler): it is
        waited for too, so a version downloading at SIGTERM is still committed."""
        self._scheduler.pause()
        deadline = asyncio.get_running_loop().time() + grace
        late: set[asyncio.Future[Any]] = set()
        while True:
            running = {*self._polls.values(), *(t for p in pollers for t in p.stragglers)}
            polls: set[asyncio.Future[Any]] = {task for task in running if not task.done()}
            left = deadline - asyncio.get_running_loop().time()
            if not polls or left <= 0:
                late = polls
                break
            _, late = await asyncio.wait(polls, timeout=left)
            if late:
                break
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late)
        return len(late)
