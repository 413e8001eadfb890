"""The daemon's signals: SIGHUP reloads the config, SIGTERM and SIGINT stop it."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from pollerd.daemon.app import Daemon


def reload_on_sighup(daemon: Daemon, path: Path) -> None:
    """SIGHUP (``systemctl reload``) re-reads ``path`` into the running daemon."""
    loop = asyncio.get_running_loop()
    pending: set[asyncio.Task[bool]] = set()

    def reload() -> None:
        task = asyncio.ensure_future(daemon.reload(path))
        pending.add(task)
        task.add_done_callback(pending.discard)

    loop.add_signal_handler(signal.SIGHUP, reload)


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT (for the running loop)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop
