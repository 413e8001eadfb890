"""``/status`` and ``/status.json``: what an editor on duty needs at a glance, per source and
resource and per sink. Built from the daemon's memory and the outbox; nothing secret in it.

Every source gets one state, worst first: ``stopped`` (refused for good: a key, a User-Agent),
``failing`` (a resource's last poll failed, or the source's API has never answered), ``stale``
(no clean poll for three intervals), ``behind`` (a cycle outlasts its interval),
``budget-limited`` (polled less often than configured, to fit a request budget), ``ok``. Every
sink gets one too: ``failing`` (its deliveries fail: since when, and why), ``waiting``
(deliveries pending), ``ok``. The page's header shows the worst of all, with dead deliveries and
the daemon's own health; the page itself is drawn by ``status_html``.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from pollerd.config.base import SinkBase
from pollerd.core.election import Fact
from pollerd.core.masking import MASKED
from pollerd.core.model import ResourceState
from pollerd.daemon.scheduler import PollScheduler
from pollerd.daemon.status_moved import SCANNED, moved_rows
from pollerd.delivery.outages import Outage
from pollerd.polling.poller import Poller
from pollerd.sinks.chat_messages import Lines
from pollerd.store.protocol import StateStore

LATEST_EVENTS = 20  # per source: a busy source never pushes another's calls off the page
STALE_INTERVALS = 3
STATES = ("stopped", "failing", "stale", "behind", "budget-limited", "ok")  # worst first
COLOURS = {
    "stopped": "bad",
    "failing": "bad",
    "stale": "bad",
    "behind": "warn",
    "budget-limited": "warn",
    "waiting": "warn",
    "ok": "ok",
}


class StateSince:
    """Since when each source and sink has been in its present state (the daemon keeps one)."""

    def __init__(self) -> None:
        self._seen: dict[str, tuple[str, float]] = {}

    def since(self, key: str, state: str, now: float) -> float:
        """When ``key`` entered ``state`` (now, if it just did)."""
        known = self._seen.get(key)
        if known is None or known[0] != state:
            self._seen[key] = known = (state, now)
        return known[1]


async def snapshot(
    pollers: Mapping[str, Poller],
    scheduler: PollScheduler,
    store: StateStore,
    sinks: list[SinkBase],
    outages: Mapping[str, Outage] | None = None,
    since: StateSince | None = None,
) -> dict[str, Any]:
    """The status as plain data (``/status.json``)."""
    now, since = time.time(), since or StateSince()
    sources = [_source(name, poller, scheduler, now) for name, poller in pollers.items()]
    lines = Lines({})
    for source in sources:
        source["since"] = iso(since.since(f"source:{source['name']}", source["state"], now))
        source["election_events"] = [
            {**entry, "line": lines.fact_line(Fact.from_json(entry), entry["source"], entry["resource"])}
            for entry in await store.latest_election_events(LATEST_EVENTS, source["name"])
        ]
        numbers = await store.latest_election_events(SCANNED, source["name"], numbers=True)
        source["moved"] = moved_rows(numbers)
    outbox = []
    for sink in sinks:
        counts = await store.delivery_counts(sink.name)
        outage = (outages or {}).get(sink.name)
        row = {
            "name": sink.name,
            "kind": sink.kind,
            "pending": counts["pending"],
            "dead": counts["dead"],
            "superseded": counts["superseded"],
            "delivered": counts["delivered"],  # sent and acknowledged; left out by its filters: apart
            "filtered": counts["filtered"],
            "failing_since": iso(outage.since) if outage else None,
            "failing_error": MASKED(outage.error) if outage else None,
            "failed": outage.failed if outage else 0,
        }
        state = "failing" if outage else "waiting" if counts["pending"] else "ok"
        row["state"] = state
        row["since"] = iso(since.since(f"sink:{sink.name}", state, now))
        outbox.append(row)
    latest = sorted(
        (event for source in sources for event in source["election_events"]),
        key=lambda event: event["committed_at"],
        reverse=True,
    )
    return {"generated_at": iso(now), "sources": sources, "sinks": outbox, "election_events": latest}


def _source(name: str, poller: Poller, scheduler: PollScheduler, now: float) -> dict[str, Any]:
    status = poller.status()
    next_run = scheduler.next_run(name)
    resources = [
        _resource(state, now) for state in sorted(poller.states.values(), key=lambda s: s.resource_id)
    ]
    hosts = Counter(row["host"] for row in resources if row["host"])
    source = {
        "name": name,
        "kind": poller.kind,
        "stopped": poller.stopped,
        "next_poll": next_run.isoformat().replace("+00:00", "Z") if next_run else None,
        "next_poll_in_s": round(max(0.0, next_run.timestamp() - now), 1) if next_run else None,
        "last_clean_poll_age_s": _age(now, status.last_clean_poll),
        "budget_limited": status.budget_limited,
        "behind": scheduler.behind(name),
        "url_switches": status.url_switches,
        "fallback_active": status.fallback_active,
        "host": hosts.most_common(1)[0][0] if hosts else None,  # where most of its resources are now
        "discovery_error": MASKED.optional(status.discovery_error),
        "discovery_failing_since": iso(status.discovery_failing_since),
        "ever_answered": status.answered,
        "resources": resources,
    }
    # a source spread out to fit its budget is stale only against the pace it can keep
    source["state"] = source_state(source, max(poller.config.interval, status.spread))
    return source


def _resource(state: ResourceState, now: float) -> dict[str, Any]:
    return {
        "resource": state.resource_id,
        "host": urlsplit(state.url).netloc or None,
        "sequence": state.sequence,
        "last_change": iso(state.last_change_at),
        "last_change_age_s": _age(now, state.last_change_at),
        "last_success_age_s": _age(now, state.last_success_at),
        "backoff_s": round(state.backoff_until - now, 1)
        if state.backoff_until and state.waiting(now)
        else None,
        "failures": state.failures,
        "last_error": MASKED.optional(state.last_error),
        "problem": MASKED.optional(plain_error(state.last_error)) if state.failures else None,
        "unpublished": state.unpublished,
    }


def source_state(source: Mapping[str, Any], interval: float) -> str:
    """The source's one state (see the module's docstring)."""
    if source["stopped"]:
        return "stopped"
    if any(r["failures"] for r in source["resources"]):
        return "failing"
    if source.get("discovery_error") and not source["resources"]:
        return "failing"  # its API has never told what to watch
    age = source["last_clean_poll_age_s"]
    if age is None or age > STALE_INTERVALS * interval:
        return "stale"
    if source.get("behind"):
        return "behind"
    return "budget-limited" if source["budget_limited"] else "ok"


def headline(status: Mapping[str, Any], health: str | None) -> tuple[str, str]:
    """(the header's words, its colour class): the worst of everything, counted."""
    by_state: dict[str, list[str]] = {}
    for source in status["sources"]:
        by_state.setdefault(source["state"], []).append(source["name"])
    problems = [
        f"{count(len(by_state[s]), 'source')} {s}: {', '.join(by_state[s])}"
        for s in STATES[:-1]
        if s in by_state
    ]
    failing_sinks = [sink["name"] for sink in status["sinks"] if sink.get("state") == "failing"]
    if failing_sinks:
        problems.append(f"{count(len(failing_sinks), 'sink')} failing: {', '.join(failing_sinks)}")
    dead = sum(sink["dead"] for sink in status["sinks"])
    if dead:
        problems.append(
            f"{count(dead, 'delivery', 'deliveries')} dead (not delivered; `pollerd deliveries` lists them)"
        )
    if status.get("state_lost"):
        problems.insert(
            0,
            "the state was lost at start (versions receivers already have may be announced "
            f"again under their sequences, with new event ids): {status['state_lost']}",
        )
    if health is not None:
        problems.insert(0, health)
    if not problems:
        return "OK", "ok"
    worst = next((s for s in STATES if s in by_state), "ok")
    serious = (
        health is not None or dead or failing_sinks or COLOURS[worst] == "bad" or status.get("state_lost")
    )
    return "; ".join(problems), "bad" if serious else "warn"


_HTTP = {
    400: "bad request",
    401: "key refused",
    403: "access refused",
    404: "not found",
    408: "timed out",
    410: "gone",
    418: "refused as a bot",
    429: "too many requests",
    500: "server error",
    502: "bad gateway",
    503: "unavailable",
    504: "gateway timeout",
}
_STATUS = re.compile(r"HTTP (\d{3})")


def plain_error(error: str | None) -> str | None:
    """A stored error (``reason: detail``) in words an editor understands."""
    if not error:
        return None
    reason, _, detail = error.partition(": ")
    status = _STATUS.search(error)
    if reason == "status" and status:
        code = int(status.group(1))
        return f"the server answered {code} ({_HTTP.get(code, 'an error')})"
    words = {
        "timeout": f"no complete answer in time ({detail.removeprefix('no complete answer ')})",
        "connection": f"could not reach the server: {detail}",
        "refused": f"not fetched: {detail}",
        "rejected": f"the server sent a file that cannot be right, refused: {detail}",
        "redirects": f"the server redirects too often: {detail}",
        "internal": f"pollerd could not handle this answer ({detail}); the log has the details",
        "write": f"pollerd could not store it ({detail})",
    }
    return words.get(reason, error)


def count(number: int, one: str, many: str | None = None) -> str:
    """``3 sources``, ``1 source``."""
    return f"{number} {one if number == 1 else many or one + 's'}"


def iso(moment: float | None) -> str | None:
    """A Unix time as ISO 8601 UTC (None stays None)."""
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _age(now: float, moment: float | None) -> float | None:
    return None if moment is None else round(now - moment, 1)
