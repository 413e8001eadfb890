"""The replay's clock: a moment of the recorded night, moving ``speed`` times faster than real
time from where the replay began, and able to pause, jump and change speed."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pollerd.core.durations import parse_duration

MAX_SPEED = 100_000.0  # a night of 12 hours in under half a second: more is a typing error


class ReplayClock:
    """Night time (Unix seconds of the recording) for every real moment; it stops at ``until``."""

    def __init__(
        self,
        start: float,
        end: float,
        speed: float = 1.0,
        begin: float | None = None,
        until: float | None = None,
        real: Callable[[], float] = time.monotonic,
        held: bool = False,
    ) -> None:
        check_speed(speed)
        self.start, self.end = start, end
        self.until = end if until is None else min(max(until, start), end)
        self.speed = speed
        self._real = real
        self._anchor_night = start if begin is None else min(max(begin, start), self.until)
        self._anchor_real = real()
        self.paused = held  # held: not moving until resumed

    def now(self) -> float:
        """Where in the night the replay is."""
        moved = 0.0 if self.paused else (self._real() - self._anchor_real) * self.speed
        return min(self._anchor_night + moved, self.until)

    @property
    def ended(self) -> bool:
        """Whether the replay has reached its last moment (it goes on serving that moment)."""
        return self.now() >= self.until

    def pause(self) -> None:
        """Hold the night where it is."""
        self._rebase(self.now())
        self.paused = True

    def resume(self) -> None:
        """Let the night move again."""
        self._rebase(self.now())
        self.paused = False

    def jump(self, to: float) -> None:
        """Go to another moment of the night (before the start or after the end: to that end)."""
        self._rebase(min(max(to, self.start), self.until))

    def set_speed(self, speed: float) -> None:
        """Move at another speed from now on."""
        check_speed(speed)
        self._rebase(self.now())
        self.speed = speed

    def seconds_left(self) -> float:
        """Real seconds until the last moment, at this speed (inf while paused)."""
        return float("inf") if self.paused else (self.until - self.now()) / self.speed

    def status(self) -> dict[str, Any]:
        """Where the replay is, for ``/status``."""
        now = self.now()
        span = max(self.until - self.start, 1e-9)
        return {
            "now": iso(now),
            "start": iso(self.start),
            "until": iso(self.until),
            "elapsed_seconds": round(now - self.start, 3),
            "progress": round(min(1.0, (now - self.start) / span), 4),
            "speed": self.speed,
            "paused": self.paused,
            "ended": now >= self.until,
        }

    def _rebase(self, night: float) -> None:
        self._anchor_night = night
        self._anchor_real = self._real()


def iso(at: float) -> str:
    """A Unix time as ISO 8601 in UTC, to the millisecond."""
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_moment(text: str, start: float) -> float:
    """A moment of the night: an ISO 8601 time (UTC unless it says), or a duration after the
    start ("90m", "2h"); ValueError naming both forms."""
    try:
        return start + parse_duration(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{text!r} is neither a time (2023-10-22T14:00:00+02:00) nor a duration after the start (90m)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def check_speed(speed: object) -> float:
    """``speed`` as a pace the clock can keep; ValueError saying why it is not one (a string, a
    boolean, NaN, an infinity, zero or less, past MAX_SPEED)."""
    if isinstance(speed, bool) or not isinstance(speed, int | float):
        raise ValueError(f"the speed must be a number, not {type(speed).__name__}")
    if not math.isfinite(speed) or not 0 < speed <= MAX_SPEED:
        raise ValueError(f"the speed must be a number above 0 and at most {MAX_SPEED:g}, not {speed!r}")
    return float(speed)
