"""``/status`` as one self-contained HTML page that refreshes itself: the headline; one line per
source and per sink (its state, since when, its last clean poll, the host in use and whether it
is the fallback); then the latest calls and corrections of each source; then the detail (every
resource, the sinks' counts, the replicas' leases)."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from pollerd.core.masking import MASKED
from pollerd.daemon.status_page import COLOURS, count, headline, iso

REFRESH_SECONDS = 10
_CORRECTIVE = ("call_retracted", "call_changed", "canton_reopened", "count_corrected", "call_pending")
_WARN = dict.fromkeys(_CORRECTIVE, "warn")
_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{padding:.25em .7em;text-align:left;
border-bottom:1px solid #ddd}th{background:#f4f4f4}.quiet{color:#666}
.bad{color:#b00020;font-weight:bold}.warn{color:#8a5300;font-weight:bold}
.ok{color:#11772d;font-weight:bold}
tr.bad td,h1.bad{background:#fde8ea}tr.warn td,h1.warn{background:#fff4de}h1.ok{background:#e6f4ea}
h1{padding:.3em .5em}
"""


def render(status: dict[str, Any], health: str | None) -> str:
    """The status page."""
    words, colour = headline(status, health)
    parts = [
        f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="{REFRESH_SECONDS}"><title>pollerd {html.escape(words[:60])}</title>
<style>{_STYLE}</style></head><body>
<h1 class="{colour}" id="headline">pollerd: {html.escape(words)}</h1>
<p class="quiet">as of {html.escape(status["generated_at"] or "")}, refreshes every
{REFRESH_SECONDS} s</p>"""
    ]
    parts += _glance(status)
    parts += _election_section(status)
    parts.append('<h2 id="detail">Detail</h2>')
    for source in status["sources"]:
        parts += _source_section(source)
    parts += _sinks_section(status)
    parts += _leases_section(status)
    parts.append("</body></html>")
    return "\n".join(parts)


def _glance(status: Mapping[str, Any]) -> list[str]:
    """One line per source and per sink: what it is doing, since when."""
    parts = [
        '<table id="glance"><tr><th>source / sink</th><th>state</th><th>since</th>'
        "<th>last clean poll</th><th>host in use</th><th>note</th></tr>"
    ]
    for source in status["sources"]:
        state = source["state"]
        host = html.escape(source["host"] or "")
        if source["fallback_active"]:
            host += ' <span class="warn">(fallback)</span>'
        note = ""
        if source["discovery_error"]:
            note = f"its API fails since {source['discovery_failing_since']}: {source['discovery_error']}"
            note += "; the known URLs are polled" if source["resources"] else "; nothing to poll yet"
        parts.append(
            f'<tr class="{_row(state)}" data-source="{html.escape(source["name"])}">'
            f"<td>{html.escape(source['name'])} <span class=quiet>({html.escape(source['kind'])})</span></td>"
            f'<td><span class="{COLOURS[state]}">{html.escape(state)}</span></td>'
            f"<td>{html.escape(source['since'] or '')}</td>"
            f"<td>{_ago(source['last_clean_poll_age_s'])}</td><td>{host}</td>"
            f"<td>{html.escape(note)}</td></tr>"
        )
    for sink in status["sinks"]:
        state = sink["state"]
        note = f"{count(sink['pending'], 'delivery', 'deliveries')} waiting"
        if sink["failing_error"]:
            note = f"{count(sink['failed'], 'attempt')} failed: {sink['failing_error']}; {note}"
        parts.append(
            f'<tr class="{_row(state)}" data-sink="{html.escape(sink["name"])}"><td>sink '
            f"{html.escape(sink['name'])} <span class=quiet>({html.escape(sink['kind'])})</span></td>"
            f'<td><span class="{COLOURS.get(state, "bad")}">{html.escape(state)}</span></td>'
            f"<td>{html.escape(sink['since'] or '')}</td><td></td><td></td>"
            f"<td>{html.escape(note)}</td></tr>"
        )
    parts.append("</table>")
    return parts


def _row(state: str) -> str:
    colour = COLOURS.get(state, "bad")
    return "" if colour == "ok" else colour


def _election_section(status: Mapping[str, Any]) -> list[str]:
    """The latest calls and corrections of each source, newest first (none yet: said so)."""
    parts = ['<h2 id="election">Latest calls and corrections</h2>']
    if any(source.get("kind") == "ap" for source in status["sources"]):
        parts.append('<p><a href="/desk" id="desk-link">The desk</a>: calls held for it, its decisions</p>')
    told = [source for source in status["sources"] if source.get("election_events") or source.get("moved")]
    if not told:
        return [*parts, '<p class="quiet">none yet</p>']
    for source in told:
        name = html.escape(source["name"])
        parts.append(
            f'<h3>{name}</h3><table class="calls" data-source="{name}">'
            "<tr><th>committed</th><th>event</th><th>what happened</th></tr>"
        )
        for event in source["election_events"]:
            corrective = "bad" if event["type"] == "call_conflict" else _WARN.get(event["type"], "")
            parts.append(
                f'<tr class="{corrective}"><td>{iso(event["committed_at"])}</td>'
                f"<td>{html.escape(event['type'])}</td><td>{html.escape(MASKED(event['line']))}</td></tr>"
            )
        parts.append("</table>")
        parts += _moved_table(name, source.get("moved") or [])
    return parts


def _moved_table(name: str, rows: list[Mapping[str, Any]]) -> list[str]:
    """Per race or proposal, who leads and the latest batch (none: no table)."""
    if not rows:
        return []
    parts = [
        f'<table class="moved" data-source="{name}">'
        "<tr><th>committed</th><th>race or proposal</th><th>leading</th><th>latest batch</th></tr>"
    ]
    parts += [
        f"<tr><td>{iso(row['committed_at'])}</td><td>{html.escape(MASKED(row['what']))}</td>"
        f"<td>{html.escape(MASKED(row['lead']))}</td><td>{html.escape(MASKED(row['batch']))}</td></tr>"
        for row in rows
    ]
    return [*parts, "</table>"]


def _source_section(source: Mapping[str, Any]) -> list[str]:
    state = source["state"]
    flags = [f'<span class="{COLOURS[state]}">{html.escape(state)}</span>']
    if source["fallback_active"]:
        flags.append('<span class="warn">on a fallback host</span>')
    if source["url_switches"]:
        flags.append(count(source["url_switches"], "URL switch", "URL switches"))
    nxt = source["next_poll_in_s"]
    timing = (
        f"last clean poll {_ago(source['last_clean_poll_age_s'])}, "
        f"{'next poll ' + _in(nxt) if nxt is not None else 'not scheduled'}"
    )
    parts = [
        f'<h3 class="source" data-state="{html.escape(state)}">'
        f"{html.escape(source['name'])} <span class=quiet>({html.escape(source['kind'])}), "
        f"{timing}</span> {' · '.join(flags)}</h3>",
    ]
    if source["discovery_error"]:
        since = html.escape(source["discovery_failing_since"] or "")
        parts.append(
            f'<p class="bad">its API could not be asked since {since}: '
            f"{html.escape(source['discovery_error'])}</p>"
        )
    parts.append(
        "<table><tr><th>resource</th><th>host</th><th>version</th><th>last change</th>"
        "<th>last success</th><th>retry</th><th>problem</th></tr>"
    )
    for row in source["resources"]:
        failing = bool(row["failures"])
        retry = _in(row["backoff_s"]) if row["backoff_s"] is not None else ""
        note = row["problem"] or ("not published yet (an empty file)" if row.get("unpublished") else "")
        parts.append(
            f'<tr class="{"bad" if failing else ""}"><td>{html.escape(row["resource"])}</td>'
            f"<td>{html.escape(row['host'] or '')}</td><td>#{row['sequence']}</td>"
            f"<td>{_ago(row['last_change_age_s'])}</td><td>{_ago(row['last_success_age_s'])}</td>"
            f"<td>{retry}</td><td>{html.escape(note)}</td></tr>"
        )
    if not source["resources"]:
        parts.append('<tr><td colspan="7" class="quiet">nothing to watch yet</td></tr>')
    parts.append("</table>")
    return parts


def _sinks_section(status: Mapping[str, Any]) -> list[str]:
    """Each sink's deliveries by status; left out by its filters is not delivered."""
    parts = [
        "<h3>Sinks</h3><table><tr><th>sink</th><th>kind</th><th>waiting</th><th>dead</th>"
        "<th>superseded</th><th>delivered</th><th>filtered out</th></tr>"
    ]
    for sink in status["sinks"]:
        dead = "bad" if sink["dead"] else ""
        parts.append(
            f'<tr class="{dead}"><td>{html.escape(sink["name"])}</td>'
            f"<td>{html.escape(sink['kind'])}</td><td>{sink['pending']}</td>"
            f"<td>{sink['dead']}</td><td>{sink['superseded']}</td>"
            f"<td>{sink['delivered']}</td><td>{sink['filtered']}</td></tr>"
        )
    parts.append("</table>")
    return parts


def _leases_section(status: Mapping[str, Any]) -> list[str]:
    """Replicas on PostgreSQL: who holds which lease, since when (this replica in bold)."""
    if "leases" not in status:
        return []
    me = status["replica"]
    parts = [
        f"<h3>Replicas</h3><p>this is <b>{html.escape(me)}</b></p><table><tr><th>lease</th>"
        "<th>held by</th><th>epoch</th><th>since</th><th>expires in</th></tr>"
    ]
    for lease in status["leases"]:
        expired = "bad" if lease["expires_in"] <= 0 else ""
        holder = html.escape(lease["holder"])
        parts.append(
            f'<tr class="{expired}"><td>{html.escape(lease["name"])}</td>'
            f"<td>{f'<b>{holder}</b>' if lease['holder'] == me else holder}</td><td>{lease['epoch']}</td>"
            f"<td>{iso(lease['acquired_at'])}</td><td>{lease['expires_in']:.1f} s</td></tr>"
        )
    parts.append("</table>")
    return parts


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
