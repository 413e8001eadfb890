"""A sink's outages, told once: the first failure of an outage (or its first dead letter) raises
one ``sink_failing`` alert, later failures are only counted, and the first delivery that goes
through again raises one ``sink_recovered`` alert with the count. A channel hears about a 10-s
object-store outage twice, not once per version it refused."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from pollerd.telemetry.alerts import Alerts


@dataclass
class Outage:
    """One sink's failures since its last delivery that went through."""

    since: float
    error: str
    failed: int = 0
    dead: int = 0
    told: bool = False  # the failing alert was raised


class SinkOutages:
    """Per sink: is it failing, since when, how often; each outage alerted once, its end once."""

    def __init__(self, alerts: Alerts, tell_after: int = 3, clock: Callable[[], float] = time.time) -> None:
        self._alerts = alerts
        self._tell_after = tell_after  # failed attempts before a retried failure is an outage
        self._clock = clock
        self._open: dict[str, Outage] = {}

    def failed(self, sink: str, what: str, error: str, dead: bool) -> None:
        """A delivery to ``sink`` of ``what`` (``source/resource #sequence``) failed (``dead``: it
        was dead-lettered, not retried)."""
        outage = self._open.setdefault(sink, Outage(self._clock(), error))
        outage.failed += 1
        outage.dead += dead
        outage.error = error
        if not outage.told and (dead or outage.failed >= self._tell_after):
            outage.told = True
            if dead:
                text = f"sink {sink} dead-lettered {what}: {error}"
            else:
                text = f"sink {sink} failing: {outage.failed} deliveries in a row ({what}: {error})"
            more = " (later failures of this outage are only counted)"
            self._alerts.raise_alert("sink_failing", sink, text + more, outage.failed)

    def delivered(self, sink: str) -> None:
        """A delivery to ``sink`` went through: an outage that was told is over."""
        outage = self._open.pop(sink, None)
        if outage is None or not outage.told:
            return
        lasted = self._clock() - outage.since
        dead = f", {outage.dead} dead-lettered (pollerd redeliver sends them again)" if outage.dead else ""
        self._alerts.raise_alert(
            "sink_recovered",
            sink,
            f"sink {sink} delivers again after {lasted:.0f} s: {outage.failed} failed{dead}",
            outage.failed,
        )

    def failing(self, sink: str) -> Outage | None:
        """The sink's outage, while it lasts."""
        return self._open.get(sink)
