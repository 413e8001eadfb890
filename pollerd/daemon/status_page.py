"""``/status`` and ``/status.json``: what an editor on duty needs at a glance, per source and
resource and per sink. Built from the daemon's memory and the outbox; nothing secret in it.

Every source gets one state, worst first: ``stopped`` (refused for good: a key, a User-Agent),
``failing`` (a resource's last poll failed), ``stale`` (no clean poll for three intervals),
``budget-limited`` (polled less often than configured, to fit a request budget), ``ok``. The page's
header shows the worst state of all, with dead deliveries and the daemon's own health.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from pollerd.config.base import SinkBase
from pollerd.core.election import Fact
from pollerd.core.masking import MASKED
from pollerd.core.model import ResourceState
from pollerd.daemon.scheduler import PollScheduler
from pollerd.polling.poller import Poller
from pollerd.sinks.chat_messages import Lines
from pollerd.store.protocol import StateStore

REFRESH_SECONDS = 10
LATEST_EVENTS = 20
STALE_INTERVALS = 3
STATES = ("stopped", "failing", "stale", "budget-limited", "ok")  # worst first
_COLOURS = {"stopped": "bad", "failing": "bad", "stale": "bad", "budget-limited": "warn", "ok": "ok"}


async def snapshot(
    pollers: Mapping[str, Poller],
    scheduler: PollScheduler,
    store: StateStore,
    sinks: list[SinkBase],
) -> dict[str, Any]:
    """The status as plain data (``/status.json``)."""
    now = time.time()
    sources = [_source(name, poller, scheduler, now) for name, poller in pollers.items()]
    outbox = []
    for sink in sinks:
        counts = await store.delivery_counts(sink.name)
        outbox.append(
            {
                "name": sink.name,
                "kind": sink.kind,
                "pending": counts["pending"],
                "dead": counts["dead"],
                "superseded": counts["superseded"],
                "delivered": counts["delivered"],
            }
        )
    lines = Lines({})
    latest = [
        {**entry, "line": lines.fact_line(Fact.from_json(entry), entry["source"], entry["resource"])}
        for entry in await store.latest_election_events(LATEST_EVENTS)
    ]
    return {"generated_at": _iso(now), "sources": sources, "sinks": outbox, "election_events": latest}


def _source(name: str, poller: Poller, scheduler: PollScheduler, now: float) -> dict[str, Any]:
    status = poller.status()
    next_run = scheduler.next_run(name)
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
        "resources": [
            _resource(state, now) for state in sorted(poller.states.values(), key=lambda s: s.resource_id)
        ],
    }
    # a source spread out to fit its budget is stale only against the pace it can keep
    source["state"] = source_state(source, max(poller.config.interval, status.spread))
    return source


def _resource(state: ResourceState, now: float) -> dict[str, Any]:
    return {
        "resource": state.resource_id,
        "host": urlsplit(state.url).netloc or None,
        "sequence": state.sequence,
        "last_change": _iso(state.last_change_at),
        "last_change_age_s": _age(now, state.last_change_at),
        "last_success_age_s": _age(now, state.last_success_at),
        "backoff_s": round(state.backoff_until - now, 1)
        if state.backoff_until and state.waiting(now)
        else None,
        "failures": state.failures,
        "last_error": MASKED.optional(state.last_error),
        "problem": MASKED.optional(plain_error(state.last_error)) if state.failures else None,
    }


def source_state(source: Mapping[str, Any], interval: float) -> str:
    """The source's one state (see the module's docstring)."""
    if source["stopped"]:
        return "stopped"
    if any(r["failures"] for r in source["resources"]):
        return "failing"
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
        f"{_count(len(by_state[s]), 'source')} {s}: {', '.join(by_state[s])}"
        for s in STATES[:-1]
        if s in by_state
    ]
    dead = sum(sink["dead"] for sink in status["sinks"])
    if dead:
        problems.append(
            f"{_count(dead, 'delivery', 'deliveries')} dead (not delivered; `pollerd deliveries` lists them)"
        )
    if status.get("state_lost"):
        problems.insert(
            0,
            "the state was lost at start (everything is announced again from "
            f"version 1): {status['state_lost']}",
        )
    if health is not None:
        problems.insert(0, health)
    if not problems:
        return "OK", "ok"
    worst = next((s for s in STATES if s in by_state), "ok")
    serious = health is not None or dead or _COLOURS[worst] == "bad" or status.get("state_lost")
    return "; ".join(problems), "bad" if serious else "warn"


def render(status: dict[str, Any], health: str | None) -> str:
    """The status as one self-contained HTML page that refreshes itself."""
    words, colour = headline(status, health)
    parts = [
        f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="{REFRESH_SECONDS}"><title>pollerd {html.escape(words[:60])}</title>
<style>
body{{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}}
table{{border-collapse:collapse;margin:.5em 0 1.5em}}td,th{{padding:.25em .7em;text-align:left;
border-bottom:1px solid #ddd}}th{{background:#f4f4f4}}.quiet{{color:#666}}
.bad{{color:#b00020;font-weight:bold}}.warn{{color:#8a5300;font-weight:bold}}
.ok{{color:#11772d;font-weight:bold}}
tr.bad td,h1.bad{{background:#fde8ea}}tr.warn td,h1.warn{{background:#fff4de}}h1.ok{{background:#e6f4ea}}
h1{{padding:.3em .5em}}
</style></head><body>
<h1 class="{colour}" id="headline">pollerd: {html.escape(words)}</h1>
<p class="quiet">as of {html.escape(status["generated_at"] or "")}, refreshes every
{REFRESH_SECONDS} s</p>"""
    ]
    parts += _election_section(status)
    for source in status["sources"]:
        parts += _source_section(source)
    parts.append(
        "<h2>Sinks</h2><table><tr><th>sink</th><th>kind</th><th>waiting</th><th>dead</th>"
        "<th>superseded</th><th>delivered</th></tr>"
    )
    for sink in status["sinks"]:
        dead = "bad" if sink["dead"] else ""
        parts.append(
            f'<tr class="{dead}"><td>{html.escape(sink["name"])}</td>'
            f"<td>{html.escape(sink['kind'])}</td><td>{sink['pending']}</td>"
            f"<td>{sink['dead']}</td><td>{sink['superseded']}</td>"
            f"<td>{sink['delivered']}</td></tr>"
        )
    parts.append("</table>")
    parts += _leases_section(status)
    parts.append("</body></html>")
    return "\n".join(parts)


def _election_section(status: Mapping[str, Any]) -> list[str]:
    """The latest calls and corrections, newest first (none yet: said so)."""
    events = status.get("election_events") or []
    parts = ['<h2 id="election">Latest calls and corrections</h2>']
    if not events:
        return [*parts, '<p class="quiet">none yet</p>']
    parts.append("<table><tr><th>committed</th><th>source</th><th>event</th><th>what happened</th></tr>")
    for event in events:
        corrective = event["type"] in ("call_retracted", "call_changed", "canton_reopened", "count_corrected")
        parts.append(
            f'<tr class="{"warn" if corrective else ""}"><td>{_iso(event["committed_at"])}</td>'
            f"<td>{html.escape(event['source'])}</td><td>{html.escape(event['type'])}</td>"
            f"<td>{html.escape(MASKED(event['line']))}</td></tr>"
        )
    parts.append("</table>")
    return parts


def _leases_section(status: Mapping[str, Any]) -> list[str]:
    """Replicas on PostgreSQL: who holds which lease, since when (this replica in bold)."""
    if "leases" not in status:
        return []
    me = status["replica"]
    parts = [
        f"<h2>Replicas</h2><p>this is <b>{html.escape(me)}</b></p><table><tr><th>lease</th>"
        "<th>held by</th><th>epoch</th><th>since</th><th>expires in</th></tr>"
    ]
    for lease in status["leases"]:
        expired = "bad" if lease["expires_in"] <= 0 else ""
        holder = html.escape(lease["holder"])
        parts.append(
            f'<tr class="{expired}"><td>{html.escape(lease["name"])}</td>'
            f"<td>{f'<b>{holder}</b>' if lease['holder'] == me else holder}</td><td>{lease['epoch']}</td>"
            f"<td>{_iso(lease['acquired_at'])}</td><td>{lease['expires_in']:.1f} s</td></tr>"
        )
    parts.append("</table>")
    return parts


def _source_section(source: Mapping[str, Any]) -> list[str]:
    state = source["state"]
    flags = [f'<span class="{_COLOURS[state]}">{html.escape(state)}</span>']
    if source["fallback_active"]:
        flags.append('<span class="warn">on a fallback host</span>')
    if source["url_switches"]:
        flags.append(_count(source["url_switches"], "URL switch", "URL switches"))
    nxt = source["next_poll_in_s"]
    timing = (
        f"last clean poll {_ago(source['last_clean_poll_age_s'])}, "
        f"{'next poll ' + _in(nxt) if nxt is not None else 'not scheduled'}"
    )
    parts = [
        f'<h2 class="source" data-state="{html.escape(state)}">'
        f"{html.escape(source['name'])} <span class=quiet>({html.escape(source['kind'])}), "
        f"{timing}</span> {' · '.join(flags)}</h2>",
        "<table><tr><th>resource</th><th>host</th><th>version</th><th>last change</th>"
        "<th>last success</th><th>retry</th><th>problem</th></tr>",
    ]
    for row in source["resources"]:
        failing = bool(row["failures"])
        retry = _in(row["backoff_s"]) if row["backoff_s"] is not None else ""
        parts.append(
            f'<tr class="{"bad" if failing else ""}"><td>{html.escape(row["resource"])}</td>'
            f"<td>{html.escape(row['host'] or '')}</td><td>#{row['sequence']}</td>"
            f"<td>{_ago(row['last_change_age_s'])}</td><td>{_ago(row['last_success_age_s'])}</td>"
            f"<td>{retry}</td><td>{html.escape(row['problem'] or '')}</td></tr>"
        )
    parts.append("</table>")
    return parts


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
    }
    return words.get(reason, error)


def _count(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else many or one + 's'}"


def _iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _age(now: float, moment: float | None) -> float | None:
    return None if moment is None else round(now - moment, 1)


def _span(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _ago(seconds: float | None) -> str:
    return "never" if seconds is None else f"{_span(max(0.0, seconds))} ago"


def _in(seconds: float) -> str:
    return "now" if seconds < 0.5 else f"in {_span(seconds)}"
