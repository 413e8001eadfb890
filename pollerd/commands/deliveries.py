"""``pollerd deliveries`` and ``pollerd redeliver``: the outbox seen and handled from the shell.

``deliveries`` reads the state read-only, beside a running daemon or not. ``redeliver`` writes, so
it takes the state lock; when a daemon holds it, the daemon is asked to do it (``handoff``) and
its delivery loops pick the deliveries up at once.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from pollerd.config import Config, DaemonConfig
from pollerd.core.masking import MASKED
from pollerd.daemon import handoff
from pollerd.store.redeliver import redeliver_in, redeliver_in_database
from pollerd.store.sqlite.schema import state_path
from pollerd.store.view import viewing

LISTED = 50


async def collect_deliveries(config: Config) -> dict[str, Any]:
    """Per sink: counts by status, and the dead and superseded deliveries (newest ``LISTED``)."""
    async with viewing(config.daemon) as view:
        if view is None:
            return {}
        return {
            sink.name: {
                "counts": await view.counts(sink.name),
                "dead": [
                    {**asdict(row), "last_error": MASKED.optional(row.last_error)}
                    for row in await view.deliveries(sink.name, ("dead",), LISTED)
                ],
                "superseded": [
                    asdict(row) for row in await view.deliveries(sink.name, ("superseded",), LISTED)
                ],
            }
            for sink in config.sinks
        }


def print_deliveries(config: Config, as_json: bool) -> int:
    """Print the outbox per sink (or JSON); exit 0."""
    report = asyncio.run(collect_deliveries(config))
    if as_json:
        print(json.dumps(report, indent=2))
        return 0
    if not report:
        print(f"no state yet in {config.daemon.state_dir}: nothing was delivered")
    for sink, info in report.items():
        counts = info["counts"]
        print(
            f"sink {sink}: {counts['pending']} pending, {counts['dead']} dead, "
            f"{counts['superseded']} superseded, {counts['delivered']} delivered"
        )
        for row in info["dead"]:
            print(
                f"  dead  {row['event_id']}  {row['source']}/{row['resource']} #{row['sequence']}"
                f"  attempts={row['attempts']}  at={_iso(row['updated_at'])}  {row['last_error']}"
            )
        for row in info["superseded"]:
            print(f"  superseded  {row['event_id']}  {row['source']}/{row['resource']} #{row['sequence']}")
    if report:
        print(kept_words(config.daemon.redeliver_keep))
    return 0


def kept_words(keep_for: float) -> str:
    """What ``redeliver EVENT_ID`` can still send: the payloads the state keeps."""
    window = f"every version of the last {keep_for / 3600:g} h" if keep_for > 0 else "no other version"
    return (
        f"kept for redelivery (daemon.redeliver_keep): {window}, each resource's current "
        "version, and every version with a pending or dead delivery"
    )


def redeliver(config: Config, event_id: str | None, sink: str | None) -> tuple[int, str]:
    """Make deliveries pending again; (exit code, message). Done here when no daemon holds the
    state, else handed to the daemon that does."""
    if sink is not None and sink not in {s.name for s in config.sinks}:
        return 2, f"no sink is called {sink!r}"
    if config.daemon.database is not None:
        return asyncio.run(_redeliver_in_database(config.daemon, event_id, sink))
    state_dir = config.daemon.state_dir
    if not state_path(state_dir).exists():
        return 1, f"no state yet in {state_dir}: nothing to redeliver"
    return handoff.carried_out(
        state_dir,
        {"redeliver": event_id, "sink": sink},
        lambda db: redeliver_in(db, state_dir, event_id, sink),
        f"the running pollerd (pid {{pid}}) did not answer within {handoff.ANSWER_TIMEOUT:g} s; "
        "nothing was changed",
    )


async def _redeliver_in_database(
    daemon: DaemonConfig, event_id: str | None, sink: str | None
) -> tuple[int, str]:
    """With PostgreSQL the command writes itself, beside any daemon: the daemons' delivery loops
    find the deliveries pending at their next round."""
    from pollerd.store.postgres.store import PgStore  # psycopg, only where there is a database

    store = PgStore.configured(daemon, max_connections=1)
    await store.open()
    try:
        return await redeliver_in_database(store, event_id, sink)
    finally:
        await store.close()


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
