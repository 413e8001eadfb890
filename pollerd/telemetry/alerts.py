"""Operational alerts for the newsroom's channel: a source failing poll after poll, a host switch,
a source stopped, a sink failing (once per outage) and delivering again. Raised where it happens,
handed to every listener (a chat sink with ``ops = true``); best effort, never in the way of
polling or delivery."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from pollerd.core.masking import MASKED


@dataclass(frozen=True)
class Alert:
    """One operational alert: its kind, the source or sink it is about, and a readable line.

    ``count``: for ``source_failing``, the failed cycles in a row so far; for
    ``source_recovered``, how many there were."""

    kind: str  # source_failing, source_recovered, host_switch, url_switch, source_stopped,
    # sink_failing, sink_recovered, call_conflict (AP and the desk disagree on a race)
    subject: str
    text: str
    count: int = 0


@runtime_checkable
class AlertListener(Protocol):
    """Takes alerts (a chat sink); must return at once."""

    def alert(self, alert: Alert) -> None:
        """Queue the alert to be told."""
        ...


class Alerts:
    """Where alerts are raised; ``listeners`` tells who hears them now (the daemon's sinks)."""

    def __init__(self, listeners: Callable[[], Iterable[object]] = tuple) -> None:
        self._listeners = listeners

    def listen(self, listeners: Callable[[], Iterable[object]]) -> None:
        """From now on, tell these (every one that is an AlertListener)."""
        self._listeners = listeners

    def raise_alert(self, kind: str, subject: str, text: str, count: int = 0) -> None:
        """Tell every listener (the text masked: an error may echo a secret)."""
        alert = Alert(kind, subject, MASKED(text), count)
        for listener in self._listeners():
            if isinstance(listener, AlertListener):
                listener.alert(alert)
