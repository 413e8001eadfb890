"""The daemon's long-running tasks (sink loops, polls, the request hand-off, the watchdog) must not
end silently. An error is logged once with its reason (again only when the reason changes), counted
(``pollerd_task_failures_total``), shown by ``/healthz`` while it lasts, and the work is retried with
backoff; a task that ends by itself, which none should, keeps ``/healthz`` at 503 until a restart.
"""

from __future__ import annotations

import asyncio
import errno
import sqlite3
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from pollerd.telemetry.metrics import Metrics

BACKOFF_BASE = 0.5
BACKOFF_MAX = 30.0


class TaskHealth:
    """Which tasks fail now (and since when), and which died."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._failing: dict[str, tuple[str, float]] = {}  # task -> (reason, since)
        self._on_write: set[str] = set()  # failing tasks whose last failure was a write refused
        self._dead: dict[str, str] = {}
        self._log = structlog.get_logger("pollerd.tasks")

    def failed(self, task: str, exc: BaseException) -> None:
        """The task's work failed with ``exc`` (it will be retried)."""
        reason = describe(exc)
        self._metrics.task_failures.labels(task).inc()
        if refused_write(exc):
            self._on_write.add(task)
        else:
            self._on_write.discard(task)
        known = self._failing.get(task)
        if known is None or known[0] != reason:
            self._log.error(
                "task failing; retrying with backoff",
                task=task,
                reason=reason,
                exc_info=not isinstance(exc, OSError | sqlite3.Error),
            )
            self._failing[task] = (reason, known[1] if known else time.monotonic())

    def failing_on_write(self, task: str) -> bool:
        """Whether the task fails, and its last failure was a write refused (a disk full)."""
        return task in self._failing and task in self._on_write

    def recovered(self, task: str) -> None:
        """The task's work succeeded again."""
        self._on_write.discard(task)
        if self._failing.pop(task, None) is not None:
            self._log.info("task working again", task=task)

    def watch(self, task: asyncio.Task[Any]) -> None:
        """Note ``task`` as dead if it ever ends other than by being cancelled."""
        task.add_done_callback(self._ended)

    def problem(self) -> str | None:
        """What /healthz says, or None."""
        problems = [f"task {name} died: {reason}" for name, reason in self._dead.items()]
        now = time.monotonic()
        problems += [
            f"task {name} failing for {now - since:.0f}s: {reason}"
            for name, (reason, since) in self._failing.items()
        ]
        return "; ".join(problems) or None

    def _ended(self, task: asyncio.Task[Any]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        reason = describe(exc) if exc is not None else "it returned, which it never should"
        self._dead[task.get_name()] = reason
        self._metrics.task_failures.labels(task.get_name()).inc()
        self._log.error(
            "task died; /healthz reports it until pollerd is restarted", task=task.get_name(), reason=reason
        )


async def retrying(
    health: TaskHealth,
    task: str,
    work: Callable[[], Awaitable[None]],
    until: Callable[[], bool] = lambda: False,
) -> None:
    """Run ``work`` again and again (until ``until()``): a failure is reported and waited out
    with backoff."""
    failures = 0
    while not until():
        try:
            await work()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            failures += 1
            health.failed(task, exc)
            await asyncio.sleep(min(BACKOFF_MAX, BACKOFF_BASE * 2 ** (failures - 1)))
        else:
            failures = 0
            health.recovered(task)


_WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO})


def refused_write(exc: BaseException) -> bool:
    """Whether ``exc`` is the disk or the state database refusing a write."""
    if isinstance(exc, OSError):
        return exc.errno in _WRITE_ERRNOS
    return isinstance(exc, sqlite3.OperationalError | sqlite3.DatabaseError)


def describe(exc: BaseException) -> str:
    """An error in words: what happened, never only a class name."""
    if isinstance(exc, OSError) and exc.errno is not None:
        where = f" on {exc.filename}" if exc.filename else ""
        words = {
            errno.ENOSPC: "disk full",
            errno.EFBIG: "file too large (disk or quota full)",
            errno.EACCES: "permission denied",
            errno.EROFS: "read-only file system",
            errno.EDQUOT: "disk quota exceeded",
        }.get(exc.errno, exc.strerror or "")
        return f"{words}{where}"
    if isinstance(exc, sqlite3.OperationalError | sqlite3.DatabaseError):
        text = str(exc)
        if "full" in text or "too large" in text:
            return f"the state database cannot be written: disk full ({text})"
        return f"the state database failed: {text}"
    text = str(exc).strip()
    return f"{text} ({type(exc).__name__})" if text else f"{type(exc).__name__} with no message"
