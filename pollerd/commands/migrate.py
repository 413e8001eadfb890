"""``pollerd migrate-state``: move a SQLite state into the PostgreSQL database ``[daemon]
database`` names, so a single instance becomes replicas without announcing anything again. The
SQLite state is only read; its daemon must be stopped (the state lock is taken)."""

from __future__ import annotations

import asyncio

from pollerd.config import Config
from pollerd.store.blobs import BlobStore
from pollerd.store.lock import StateLock, StateLocked
from pollerd.store.sqlite.schema import connect_readonly, state_path


def migrate_state(config: Config) -> tuple[int, str]:
    """(exit code, what was done)."""
    from pollerd.store.migrate import read_state  # psycopg, only for this command

    daemon = config.daemon
    if daemon.database is None:
        return 2, "daemon.database is not set: there is no PostgreSQL database to move the state to"
    if not state_path(daemon.state_dir).exists():
        return 1, f"no SQLite state in {daemon.state_dir}: nothing to move"
    lock = StateLock(daemon.state_dir)
    try:
        lock.acquire()
    except StateLocked as exc:
        return 2, f"{exc}: stop it first, then move its state"
    try:
        db = connect_readonly(state_path(daemon.state_dir))
        try:
            rows = read_state(db)
        finally:
            db.close()
        return asyncio.run(_move(config, rows))
    finally:
        lock.release()


async def _move(config: Config, rows: dict[str, list[tuple[object, ...]]]) -> tuple[int, str]:
    from pollerd.store.migrate import MigrationRefused, move
    from pollerd.store.postgres.store import PgStore

    store = PgStore.configured(config.daemon, max_connections=1)
    await store.open()
    try:
        moved = await move(rows, BlobStore(config.daemon.state_dir), store)
    except MigrationRefused as exc:
        return 1, str(exc)
    finally:
        await store.close()
    counts = ", ".join(f"{count} {table}" for table, count in moved.rows.items())
    return 0, f"moved {counts} and {moved.payloads} payloads into the database"
