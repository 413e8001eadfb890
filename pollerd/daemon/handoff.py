"""Requests from the command line to the daemon that holds the state lock.

Only the lock holder writes to a state. ``pollerd redeliver`` run beside a running daemon therefore
does not write itself: it leaves a request file in ``<state_dir>/requests/``, the daemon carries it
out (it looks every second) and leaves the answer beside it, which the command prints.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

import structlog

from pollerd.store.durable import atomic_write
from pollerd.store.lock import StateLock, StateLocked
from pollerd.store.sqlite.store import writing

FOLDER = "requests"
ANSWER_TIMEOUT = 15.0
CHECK_EVERY = 1.0
Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


def carried_out(
    state_dir: Path,
    request: dict[str, Any],
    here: Callable[[sqlite3.Connection], tuple[int, str]],
    unanswered: str,
) -> tuple[int, str]:
    """(exit code, message) of ``request``: handed to the daemon holding the state, or done
    ``here`` under the state lock when none does. ``unanswered``: what to say when the daemon
    does not answer in time (it names the holder's pid as ``{pid}``)."""
    lock = StateLock(state_dir)
    try:
        lock.acquire()
    except StateLocked as exc:
        answer = submit(state_dir, request)
        if answer is None:
            return 1, unanswered.format(pid=exc.holder)
        return int(answer["code"]), str(answer["message"])
    try:
        with writing(state_dir) as db:
            return here(db)
    finally:
        lock.release()


def submit(
    state_dir: Path, request: dict[str, Any], timeout: float = ANSWER_TIMEOUT
) -> dict[str, Any] | None:
    """Leave ``request`` for the daemon and wait for its answer (None: no answer in time)."""
    folder = state_dir / FOLDER
    folder.mkdir(exist_ok=True)
    name = uuid.uuid4().hex
    atomic_write(json.dumps(request).encode(), folder / f"{name}.json")
    answer = folder / f"{name}.answer"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if answer.exists():
            text = answer.read_text(encoding="utf-8")
            answer.unlink()
            return dict(json.loads(text))
        time.sleep(0.05)
    with suppress(FileNotFoundError):  # withdrawn: a daemon that comes back must not act on it late
        (folder / f"{name}.json").unlink()
    return None


async def serve_once(state_dir: Path, handle: Handler) -> None:
    """Carry out the requests left in the state directory, one after the other; then wait a
    moment (the daemon runs this again and again)."""
    log = structlog.get_logger("pollerd.handoff")
    for path in await asyncio.to_thread(_waiting, state_dir / FOLDER):
        try:
            request = json.loads(await asyncio.to_thread(path.read_bytes))
            answer = await handle(request)
        except (OSError, ValueError) as exc:
            log.warning("request from the command line not understood", file=path.name, error=str(exc))
            answer = {"code": 2, "message": "the daemon could not read the request"}
        await asyncio.to_thread(_answer, path, answer)
    await asyncio.sleep(CHECK_EVERY)


def _waiting(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime)


def _answer(request: Path, answer: dict[str, Any]) -> None:
    atomic_write(json.dumps(answer).encode(), request.with_suffix(".answer"))
    with suppress(FileNotFoundError):
        request.unlink()
