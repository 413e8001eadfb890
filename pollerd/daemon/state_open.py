"""Opening the state at start: the lock, the database (a SQLite file, or PostgreSQL), and the
evidence of a state lost."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import TYPE_CHECKING

import structlog

from pollerd.config import Config, DaemonConfig, FilesystemSinkConfig
from pollerd.core.masking import MASKED
from pollerd.store.blobs import BlobStore
from pollerd.store.lock import StateLock
from pollerd.store.sqlite.schema import StateCorrupt
from pollerd.store.sqlite.store import SqliteStore

if TYPE_CHECKING:  # psycopg (10 MB at start) is loaded only with [daemon] database
    from pollerd.store.postgres.store import PgStore


class StartupError(Exception):
    """The daemon cannot start (a port in use, a state directory it cannot write)."""


def state_for(daemon: DaemonConfig) -> tuple[SqliteStore | PgStore, BlobStore]:
    """The state store and payload store the config asks for: SQLite files in ``state_dir``, or
    PostgreSQL (``database``; ``state_dir`` then holds temporary downloads and local copies)."""
    if daemon.database is None:
        return SqliteStore(daemon.state_dir), BlobStore(daemon.state_dir)
    from pollerd.store.postgres.blobs import PgBlobs
    from pollerd.store.postgres.store import PgStore

    store = PgStore.configured(daemon)
    return store, PgBlobs(daemon.state_dir, store)


async def open_state(
    lock: StateLock, store: SqliteStore | PgStore, blobs: BlobStore, config: Config
) -> str | None:
    """Take the state lock (StateLocked when another process writes there) and open the state;
    the evidence that an earlier state was lost, if a new database finds its output (said loudly:
    every resource is then announced again from version 1)."""
    try:
        await asyncio.to_thread(lock.acquire)
    except OSError as exc:
        raise StartupError(f"daemon.state_dir: cannot lock {lock.path}: {exc.strerror}") from None
    if isinstance(store, SqliteStore):
        await _open_file(store)
    else:
        await _open_database(store)
    lost = await asyncio.to_thread(traces_of_a_lost_state, blobs, config) if store.created else None
    if lost is None and isinstance(store, SqliteStore):
        lost = store.lost
    if lost:
        structlog.get_logger("pollerd").error(
            "STATE LOST: the state database does not hold everything announced before; "
            "versions receivers already have may be announced again under their sequences "
            "(from version 1 if the database is new) with new event ids",
            evidence=lost,
        )
    return lost


async def _open_file(store: SqliteStore) -> None:
    try:
        await store.open()
    except StateCorrupt as exc:
        raise StartupError(str(exc)) from None
    except (OSError, sqlite3.Error) as exc:
        raise StartupError(f"daemon.state_dir: cannot open {store.path}: {exc}") from None


async def _open_database(store: PgStore) -> None:
    import psycopg
    from psycopg_pool import PoolTimeout

    from pollerd.store.postgres.schema import SchemaTooNew

    try:
        await store.open()
    except (psycopg.Error, PoolTimeout, SchemaTooNew) as exc:
        raise StartupError(f"daemon.database: cannot open the database: {MASKED(str(exc))}") from None


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
