"""``kind = "stdout"``: one line per change on standard output, JSON or text."""

from __future__ import annotations

import json
import sys
from typing import Any
from urllib.parse import urlsplit

from pollerd.config import StdoutSinkConfig
from pollerd.core.model import Event
from pollerd.sinks.base import DeliveryFailed
from pollerd.sinks.chat_messages import Lines
from pollerd.versions.payload import Payload


class StdoutSink:
    """Prints the event (not the payload) as one line, flushed at once; as text, each election
    event it tells of is a line of its own (and the version's line only where versions are
    subscribed)."""

    def __init__(self, config: StdoutSinkConfig) -> None:
        self.name = config.name
        self._versions = "versions" in config.events
        self._lines = Lines({})
        self._render = self._text if config.format == "text" else _json_line

    def _text(self, event: Event) -> str:
        lines = [event_line(event)] if self._versions or not event.election else []
        stamp = f"{event.detected_at:%H:%M:%S}"
        lines += [f"{stamp}  * {fact.type}  {self._lines.line(event, fact)}" for fact in event.election]
        return "\n".join(lines)

    async def deliver(self, event: Event, payload: Payload, epoch: int | None = None) -> None:
        """Write one line; a closed pipe is a failure to retry, not a crash."""
        try:
            sys.stdout.write(self._render(event) + "\n")
            sys.stdout.flush()
        except (BrokenPipeError, ValueError) as exc:
            raise DeliveryFailed(f"standard output is closed: {exc}") from None

    async def close(self) -> None:
        """Nothing to release."""


def _json_line(event: Event) -> str:
    return json.dumps(event.to_json(), separators=(",", ":"), ensure_ascii=False)


def event_line(event: Event) -> str:
    """A change for people: when, what, which version, how big, and what the file says."""
    parts = [
        f"{event.detected_at:%H:%M:%S}",
        f"{event.source}/{event.resource}",
        f"#{event.sequence}",
        _size(event.size),
        event.sha256[:8],
    ]
    if event.details:
        parts.append(_progress(event.details))
    if event.url_switch:
        parts.append(f"(moved to {urlsplit(event.url_switch['to']).netloc})")
    return "  ".join(p for p in parts if p)


def _summary_words(summary: dict[str, Any]) -> str:
    if summary.get("first"):
        count = len(summary.get("ballots") or [])
        return f"first sight: {count} ballot{'' if count == 1 else 's'}"
    return "changed: " + ", ".join(summary.get("changed") or sorted(summary))


def _size(size: int) -> str:
    if size >= 1_000_000:
        return f"{size / 1e6:.1f} MB"
    return f"{size / 1e3:.1f} kB" if size >= 1000 else f"{size} B"


def _progress(details: dict[str, Any]) -> str:
    words = []
    summary = details.get("summary")
    if isinstance(summary, dict):
        words.append(_summary_words(summary))
    if "changed_races" in details:
        count = len(details["changed_races"])
        words.append(f"{count} {'race' if count == 1 else 'races'} changed")
    if details.get("as_of"):
        words.append(f"as of {details['as_of']}")
    if details.get("timestamp_local"):
        words.append(f"file time {details['timestamp_local'][11:]}")
    stand = details.get("stand") or {}
    if "gemeinden_abgeschlossen" in stand:
        words.append(f"{stand['gemeinden_abgeschlossen']}/{stand.get('gemeinden_total')} communes")
    if "cantons_complete" in details:
        words.append(f"{details['cantons_complete']}/{details.get('cantons_reporting')} cantons")
    return ", ".join(words)
