"""Making settled deliveries pending again: the part of ``pollerd redeliver`` that writes, done by
the state's one writer (the command itself, or the daemon it hands the request to)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from pollerd.store import queries
from pollerd.store.blobs import BlobStore


def redeliver_in(
    db: sqlite3.Connection, state_dir: Path, event_id: str | None, sink: str | None
) -> tuple[int, str]:
    """The redelivery itself, by the state's one writer: (exit code, what was done)."""
    if event_id is not None:
        sha = queries.event_sha256(db, event_id)
        if sha is None:
            return 1, f"no event {event_id}"
        if not BlobStore(state_dir).path(sha).exists():
            return 1, f"the payload of {event_id} is no longer kept; it cannot be sent again"
    count = queries.redeliver(db, event_id, sink)
    what = f"of event {event_id}" if event_id else "that were dead"
    if not count:
        return 1, f"nothing to redeliver (no deliveries {what})"
    return 0, f"{count} {'delivery' if count == 1 else 'deliveries'} {what} pending again"
