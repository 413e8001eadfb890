"""``kind = "stdout"``: one JSON line per change on standard output."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pollerd.config import StdoutSinkConfig
from pollerd.model import Event
from pollerd.sinks.base import DeliveryFailed


class StdoutSink:
    """Prints the event (not the payload) as one JSON line, flushed at once."""

    def __init__(self, config: StdoutSinkConfig) -> None:
        self.name = config.name

    async def deliver(self, event: Event, payload: Path) -> None:
        """Write one line; a closed pipe is a failure to retry, not a crash."""
        line = json.dumps(event.to_json(), separators=(",", ":"))
        try:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
        except (BrokenPipeError, ValueError) as exc:
            raise DeliveryFailed(f"standard output is closed: {exc}") from None

    async def close(self) -> None:
        """Nothing to release."""
