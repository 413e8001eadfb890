"""``/status`` and ``/status.json``: what an editor on duty needs at a glance, per source and
resource and per sink. Built from the daemon's memory and the outbox; nothing secret in it."""

from __future__ import annotations

import html
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from pollerd.config_base import SinkBase
from pollerd.metrics import Metrics
from pollerd.poller import Poller
from pollerd.scheduler import PollScheduler
from pollerd.state import StateStore

REFRESH_SECONDS = 10


async def snapshot(pollers: Mapping[str, Poller], scheduler: PollScheduler, store: StateStore,
                   sinks: list[SinkBase], metrics: Metrics) -> dict[str, Any]:
    """The status as plain data (``/status.json``)."""
    now = time.time()
    registry = metrics.registry
    sources = []
    for name, poller in pollers.items():
        next_run = scheduler.next_run(name)
        resources = [
            {"resource": state.resource_id, "host": urlsplit(state.url).netloc or None,
             "sequence": state.sequence, "last_change": _iso(state.last_change_at),
             "last_change_age_s": _age(now, state.last_change_at),
             "last_success_age_s": _age(now, state.last_success_at),
             "backoff_s": round(state.backoff_until - now, 1)
             if state.backoff_until and state.backoff_until > now else None,
             "failures": state.failures, "last_error": state.last_error}
            for state in sorted(poller.states.values(), key=lambda s: s.resource_id)
        ]
        sources.append({
            "name": name, "kind": getattr(poller.config, "kind", "?"),
            "stopped": bool(getattr(poller, "failed", False)),
            "next_poll": next_run.isoformat().replace("+00:00", "Z") if next_run else None,
            "url_switches": int(registry.get_sample_value(
                "pollerd_url_switches_total", {"source": name}) or 0),
            "fallback_active": bool(registry.get_sample_value(
                "pollerd_fallback_active", {"source": name})),
            "resources": resources,
        })
    outbox = []
    for sink in sinks:
        counts = await store.delivery_counts(sink.name)
        outbox.append({"name": sink.name, "kind": getattr(sink, "kind", "?"),
                       "pending": counts["pending"], "dead": counts["dead"],
                       "superseded": counts["superseded"], "delivered": counts["delivered"]})
    return {"generated_at": _iso(now), "sources": sources, "sinks": outbox}


def render(status: dict[str, Any], health: str | None) -> str:
    """The status as one self-contained HTML page that refreshes itself."""
    state = "OK" if health is None else f"PROBLEM: {health}"
    parts = [f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="{REFRESH_SECONDS}"><title>pollerd status</title>
<style>
body{{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}}
table{{border-collapse:collapse;margin:.5em 0 1.5em}}td,th{{padding:.25em .7em;text-align:left;
border-bottom:1px solid #ddd}}th{{background:#f4f4f4}}.bad{{color:#b00020;font-weight:bold}}
.ok{{color:#11772d;font-weight:bold}}.quiet{{color:#777}}
</style></head><body>
<h1>pollerd <span class="{'ok' if health is None else 'bad'}">{html.escape(state)}</span></h1>
<p class="quiet">as of {html.escape(status['generated_at'] or '')}, refreshes every
{REFRESH_SECONDS} s</p>"""]
    for source in status["sources"]:
        flags = []
        if source["stopped"]:
            flags.append('<span class="bad">STOPPED</span>')
        if source["fallback_active"]:
            flags.append('<span class="bad">on fallback host</span>')
        if source["url_switches"]:
            flags.append(f"{source['url_switches']} URL switches")
        parts.append(f"<h2>{html.escape(source['name'])} <span class=quiet>({source['kind']}), next "
                     f"poll {html.escape(source['next_poll'] or '-')}</span> {' '.join(flags)}</h2>")
        parts.append("<table><tr><th>resource</th><th>host</th><th>version</th><th>last change</th>"
                     "<th>last success</th><th>backoff</th><th>last error</th></tr>")
        for row in source["resources"]:
            error = row["last_error"] or ""
            parts.append(
                f"<tr><td>{html.escape(row['resource'])}</td><td>{html.escape(row['host'] or '')}</td>"
                f"<td>#{row['sequence']}</td><td>{_ago(row['last_change_age_s'])}</td>"
                f"<td>{_ago(row['last_success_age_s'])}</td>"
                f"<td>{'' if row['backoff_s'] is None else str(row['backoff_s']) + ' s'}</td>"
                f"<td class=\"{'bad' if error else ''}\">{html.escape(error)}</td></tr>")
        parts.append("</table>")
    parts.append("<h2>Sinks</h2><table><tr><th>sink</th><th>kind</th><th>pending</th><th>dead</th>"
                 "<th>superseded</th><th>delivered</th></tr>")
    for sink in status["sinks"]:
        dead = "bad" if sink["dead"] else ""
        parts.append(f"<tr><td>{html.escape(sink['name'])}</td><td>{sink['kind']}</td>"
                     f"<td>{sink['pending']}</td><td class=\"{dead}\">{sink['dead']}</td>"
                     f"<td>{sink['superseded']}</td><td>{sink['delivered']}</td></tr>")
    parts.append("</table></body></html>")
    return "\n".join(parts)


def _iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _age(now: float, moment: float | None) -> float | None:
    return None if moment is None else round(now - moment, 1)


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"
