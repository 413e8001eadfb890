"""The demo feed: a few JSON files that change every few seconds, with the usual faults.

- ``/results.json``: S3-like (ETag + Last-Modified), counts rise every 4 steps; once a re-upload of
  identical bytes (new Last-Modified, same content).
- ``/turnout.json``: Last-Modified only, every 6 steps; a burst of 503s now and then.
- ``/live.json``: no validators and HEAD refused (405), every 5 steps; one HTML error page.
- A 429 with ``Retry-After: 3`` on the results file once a minute.
"""

from __future__ import annotations

import asyncio
import json
import random
from datetime import UTC, datetime

from pollerd.sim.files import Fault, FileHost

PARTIES = ("SVP", "SP", "FDP", "Mitte", "GRÜNE", "GLP")
CYCLE = 60


class DemoFeed:
    """Owns the demo files on a FileHost and plays their changes, one step at a time."""

    def __init__(self, host: FileHost, seed: int = 2023) -> None:
        self.host = host
        self._rng = random.Random(seed)
        self._votes = dict.fromkeys(PARTIES, 0)
        self._communes = 0
        self.step_number = 0
        host.add("/results.json", validators="full")
        host.add("/turnout.json", validators="last_modified")
        host.add("/live.json", validators="none", head_allowed=False)
        self._publish_results()
        self._publish_turnout()
        self._publish_live()

    async def play(self, step_seconds: float, stop: asyncio.Event) -> None:
        """Advance one step every ``step_seconds`` until ``stop`` is set."""
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=step_seconds)
            except TimeoutError:
                self.step()

    def step(self) -> None:
        """One step of the feed's timeline."""
        self.step_number += 1
        n = self.step_number
        if n % 4 == 0:
            self._count_more()
            self._publish_results()
        if n % 6 == 0:
            self._publish_turnout()
        if n % 5 == 0:
            self._publish_live()
        self._faults(n % CYCLE)

    def _faults(self, phase: int) -> None:
        if phase == 15:
            current = self.host.files["/results.json"].current
            if current is not None:
                self.host.publish("/results.json", current.body)  # re-upload, same bytes
        elif phase == 20:
            self.host.inject("/turnout.json", Fault("status", count=3, status=503))
        elif phase == 30:
            self.host.inject("/results.json", Fault("status", count=1, status=429,
                                                    retry_after="3"))
        elif phase == 40:
            self.host.inject("/live.json", Fault("html", count=1, methods=frozenset({"GET"})))

    def _count_more(self) -> None:
        self._communes = min(2131, self._communes + self._rng.randint(40, 160))
        for party in PARTIES:
            self._votes[party] += self._rng.randint(500, 5000)

    def _publish_results(self) -> None:
        document = {
            "timestamp": _now(),
            "stand": {"gemeinden_total": 2131, "gemeinden_abgeschlossen": self._communes},
            "parteien": [{"partei": p, "stimmen": v} for p, v in self._votes.items()],
        }
        self.host.publish("/results.json", _json(document))

    def _publish_turnout(self) -> None:
        share = round(min(48.0, 10 + self._communes / 2131 * 38), 2)
        self.host.publish("/turnout.json", _json({"timestamp": _now(), "beteiligung": share}))

    def _publish_live(self) -> None:
        ticker = {"timestamp": _now(), "headline": f"{self._communes} of 2131 communes counted"}
        self.host.publish("/live.json", _json(ticker))


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _json(document: object) -> bytes:
    return b"\xef\xbb\xbf" + json.dumps(document, ensure_ascii=False, indent=1).encode()
