"""Opening the state at start: the lock, the database, and the evidence of a state lost."""

from __future__ import annotations

import asyncio
import sqlite3

import structlog

from pollerd.config import Config, FilesystemSinkConfig
from pollerd.store.blobs import BlobStore
from pollerd.store.lock import StateLock
from pollerd.store.schema import StateCorrupt
from pollerd.store.sqlite import SqliteStore


class StartupError(Exception):
    """The daemon cannot start (a port in use, a state directory it cannot write)."""


async def open_state(lock: StateLock, store: SqliteStore, blobs: BlobStore, config: Config) -> str | None:
    """Take the state lock (StateLocked when another process writes there) and open the state;
    the evidence that an earlier state was lost, if a new database finds its output (said loudly:
    every resource is then announced again from version 1)."""
    try:
        await asyncio.to_thread(lock.acquire)
    except OSError as exc:
        raise StartupError(f"daemon.state_dir: cannot lock {lock.path}: {exc.strerror}") from None
    try:
        await store.open()
    except StateCorrupt as exc:
        raise StartupError(str(exc)) from None
    except (OSError, sqlite3.Error) as exc:
        raise StartupError(f"daemon.state_dir: cannot open {store.path}: {exc}") from None
    lost = await asyncio.to_thread(traces_of_a_lost_state, blobs, config) if store.created else None
    if lost:
        structlog.get_logger("pollerd").error(
            "STATE LOST: the state database is new but earlier output exists; "
            "every resource will be announced again from version 1 with new "
            "event ids",
            evidence=lost,
        )
    return lost


def traces_of_a_lost_state(blobs: BlobStore, config: Config) -> str | None:
    """Where a new state database finds output of an earlier one (payloads kept for it,
    versions a filesystem sink wrote), or None."""
    if any(path.is_file() for path in blobs.blob_dir.glob("*/*")):
        return f"payloads of earlier versions in {blobs.blob_dir}"
    for sink in config.sinks:
        if isinstance(sink, FilesystemSinkConfig):
            written = [sink.root / s.name for s in config.sources if (sink.root / s.name).is_dir()]
            if written:
                return f"versions written by sink {sink.name} in {written[0]}"
    return None
