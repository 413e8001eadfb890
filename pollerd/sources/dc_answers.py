"""What Democracy Club's answers mean: errors in the service's own words (and how long it asks
us to wait), a record's own time, the address picker's slugs, and the ballots feed's cursor."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from pollerd.core.payload import loose_json
from pollerd.polling.answers import FetchFailure

_WAIT = re.compile(r"available in (\d+) seconds?")


class DcRefused(Exception):
    """The service answered with an error (its own words in ``message``)."""

    def __init__(self, status: int | None, message: str, wait: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.wait = wait


def refusal(exc: FetchFailure) -> Exception:
    if exc.status is None:
        return exc
    text = exc.body.decode("utf-8", "replace").strip()
    message = text[:300] or exc.detail
    body = loose_json(exc.body)
    if isinstance(body, dict):
        message = next((str(body[k]) for k in ("detail", "error", "message") if k in body), message)
    found = _WAIT.search(message)
    wait = float(found.group(1)) if found else exc.retry_after
    return DcRefused(exc.status, f"HTTP {exc.status}: {message}", wait)


def updated_at(row: dict[str, Any] | None) -> float | None:
    """A record's own ``last_updated``, as a Unix time."""
    stamp = (row or {}).get("last_updated")
    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def picker_slugs(answer: dict[str, Any] | None) -> list[str]:
    if not answer or not answer.get("address_picker"):
        return []
    return [str(a["slug"]) for a in answer.get("addresses") or [] if isinstance(a, dict) and "slug" in a]


def cursor_after(rows: list[dict[str, Any]], full: bool, current: str | None) -> str:
    """The next ``last_updated`` cursor. After a full page it stays just before the last
    timestamp, so ballots sharing it on the next page are not skipped (seen twice at worst,
    and a second sighting of the same content is no change)."""
    last = str(rows[-1]["last_updated"])
    if not full:
        return last
    earlier = (datetime.fromisoformat(last) - timedelta(microseconds=1)).isoformat()
    return last if current is not None and earlier <= current else earlier
