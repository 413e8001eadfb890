"""``pollerd status``: what the state directory knows, per resource and per sink."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from pollerd.config import Config
from pollerd.core.masking import MASKED
from pollerd.store.view import viewing


async def collect_status(config: Config) -> dict[str, Any]:
    """Per source and resource: url, strategy, validators, last change, last error, backoff."""
    async with viewing(config.daemon) as view:
        if view is None:
            return {"sources": {}, "stopped": {}, "discovery_failing": {}, "sinks": {}}
        sources = {
            source.name: [_resource_row(state) for state in (await view.states(source.name)).values()]
            for source in config.sources
        }
        stopped = {
            source.name: reason
            for source in config.sources
            if (reason := await view.source_note(source.name, "stopped")) is not None
        }
        discovery = {
            source.name: MASKED(reason)
            for source in config.sources
            if (reason := await view.source_note(source.name, "discovery")) is not None
        }
        sinks = {sink.name: {"pending": (await view.counts(sink.name))["pending"]} for sink in config.sinks}
        leases = [asdict(row) for row in await view.leases()]
    return {
        "sources": sources,
        "stopped": stopped,
        "discovery_failing": discovery,
        "sinks": sinks,
        "leases": leases,
    }


def _resource_row(state: Any) -> dict[str, Any]:
    backoff = state.backoff_until if (state.backoff_until or 0) > time.time() else None
    return {
        "resource": state.resource_id,
        "url": state.url,
        "strategy": state.learned_strategy.value if state.learned_strategy else None,
        "etag": state.validators.etag,
        "last_modified": state.validators.last_modified,
        "sequence": state.sequence,
        "sha256": state.sha256,
        "last_change": _iso(state.last_change_at),
        "last_success": _iso(state.last_success_at),
        "last_error": MASKED.optional(state.last_error),
        "failures": state.failures,
        "backoff_until": _iso(backoff),
        "unpublished": state.unpublished,
    }


def _iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def print_status(config: Config, as_json: bool = False) -> int:
    """Print the status as a table (or JSON); always exit 0."""
    status = asyncio.run(collect_status(config))
    if as_json:
        print(json.dumps(status, indent=2))
        return 0
    if not status["sources"]:
        print(f"no state yet in {config.daemon.state_dir.resolve()}: pollerd has not polled with it")
        return 0
    for source, rows in status["sources"].items():
        print(f"source {source}: {plural(len(rows), 'resource')}")
        if source in status["stopped"]:
            print(f"  STOPPED: {status['stopped'][source]}")
        if source in status["discovery_failing"]:
            print(f"  DISCOVERY FAILING (the known URLs are polled): {status['discovery_failing'][source]}")
        for row in rows:
            _print_resource(row)
    for sink, info in status["sinks"].items():
        print(f"sink {sink}: {plural(info['pending'], 'delivery', 'deliveries')} pending")
    for lease in status.get("leases", []):
        _print_lease(lease)
    return 0


def _print_resource(row: dict[str, Any]) -> None:
    print(
        f"  {row['resource']}  version {row['sequence']}"
        f"  last change {row['last_change'] or 'never'}"
        f"  probed by {row['strategy'] or 'not yet known'}  {row['url'] or '-'}"
    )
    validators = [
        f"{name} {row[key]}"
        for name, key in (("ETag", "etag"), ("Last-Modified", "last_modified"))
        if row[key]
    ]
    if validators:
        print(f"      {'  '.join(validators)}")
    if row["unpublished"]:
        print("      not published yet (an empty file)")
    if row["last_error"] or row["backoff_until"]:
        waiting = f", waiting until {row['backoff_until']}" if row["backoff_until"] else ""
        failures = plural(row["failures"], "failure")
        print(f"      failing ({failures} in a row{waiting}): {row['last_error'] or '-'}")


def _print_lease(lease: dict[str, Any]) -> None:
    expires = lease["expires_in"]
    state = f"expires in {expires:.0f} s" if expires > 0 else "EXPIRED: nobody holds it"
    print(
        f"lease {lease['name']}: {lease['holder']} (epoch {lease['epoch']}) "
        f"since {_iso(lease['acquired_at'])}, {state}"
    )


def plural(count: int, one: str, many: str | None = None) -> str:
    """``1 source``, ``2 sources``."""
    return f"{count} {one if count == 1 else many or one + 's'}"
