"""``pollerd deliveries`` and ``pollerd redeliver``: the outbox seen and handled from the shell.

Both open the state directory beside a running daemon (SQLite WAL); a redelivery is picked up
by the running daemon within a minute, or by the next ``pollerd once``.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from pollerd.blobs import BlobStore
from pollerd.config import Config
from pollerd.state import SqliteStore

LISTED = 50


def collect_deliveries(config: Config) -> dict[str, Any]:
    """Per sink: counts by status, and the dead and superseded deliveries (newest ``LISTED``)."""
    store = _open(config)
    try:
        return {sink.name: {"counts": store.count_by_status(sink.name),
                            "dead": [asdict(row) for row in store.list_deliveries(
                                sink.name, ("dead",), LISTED)],
                            "superseded": [asdict(row) for row in store.list_deliveries(
                                sink.name, ("superseded",), LISTED)]}
                for sink in config.sinks}
    finally:
        store.db.close()


def print_deliveries(config: Config, as_json: bool) -> int:
    """Print the outbox per sink (or JSON); exit 0."""
    report = collect_deliveries(config)
    if as_json:
        print(json.dumps(report, indent=2))
        return 0
    for sink, info in report.items():
        counts = info["counts"]
        print(f"sink {sink}: {counts['pending']} pending, {counts['dead']} dead, "
              f"{counts['superseded']} superseded, {counts['delivered']} delivered")
        for row in info["dead"]:
            print(f"  dead  {row['event_id']}  {row['source']}/{row['resource']} #{row['sequence']}"
                  f"  attempts={row['attempts']}  at={_iso(row['updated_at'])}  {row['last_error']}")
        for row in info["superseded"]:
            print(f"  superseded  {row['event_id']}  {row['source']}/{row['resource']}"
                  f" #{row['sequence']}")
    return 0


def redeliver(config: Config, event_id: str | None, sink: str | None) -> tuple[int, str]:
    """Make deliveries pending again; (exit code, message)."""
    if sink is not None and sink not in {s.name for s in config.sinks}:
        return 2, f"no sink is called {sink!r}"
    store = _open(config)
    try:
        if event_id is not None:
            sha = store.event_sha256(event_id)
            if sha is None:
                return 1, f"no event {event_id}"
            if not BlobStore(config.daemon.state_dir).path(sha).exists():
                return 1, f"the payload of {event_id} is no longer kept; it cannot be sent again"
        count = store.redeliver(event_id, sink)
    finally:
        store.db.close()
    what = f"event {event_id}" if event_id else "dead deliveries"
    return (0, f"{count} deliveries of {what} are pending again") if count else \
        (1, f"nothing to redeliver for {what}")


def _open(config: Config) -> SqliteStore:
    store = SqliteStore(config.daemon.state_dir / "pollerd.sqlite3")
    store.open_sync()
    return store


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
