"""Democracy Club's ballots feed (``/ballots/?last_updated=<cursor>``), replayed as a chain, as
AP's ``nextrequest`` queries are: a client's cursor depends on what it saw, so its URLs are not
the recording's. Every recorded answer of the feed is folded into each ballot's rows over the
night; a request at a moment gets the ballots updated after its cursor as they read then, oldest
first, a page at most. A client faster than the recording gets "nothing new" (no results), never
a 404; before the first recorded answer, the feed is what that answer held.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pollerd.record.archive import Answer
from pollerd.replay.timeline import origin_of, request_key

FEED_CURSOR = ("last_updated", "page_size")
FEED_PATH = "/ballots/"
PAGE = 100  # the service's largest page


@dataclass
class DcFeed:
    """One feed URL's ballots over the night: at each recorded moment, the rows that answer held."""

    times: list[float] = field(default_factory=list)
    rows: list[dict[str, dict[str, Any]]] = field(default_factory=list)  # by ballot_paper_id

    def answer(self, moment: float, cursor: str | None, page_size: int) -> dict[str, Any]:
        """The feed at ``moment`` after ``cursor``, as the service answers it."""
        index = max(bisect.bisect_right(self.times, moment) - 1, 0)
        current: dict[str, dict[str, Any]] = {}
        for rows in self.rows[: index + 1]:
            current.update(rows)
        after = _moment(cursor) if cursor else None
        found = sorted(
            (row for row in current.values() if after is None or _moment(row["last_updated"]) > after),
            key=lambda row: (_moment(row["last_updated"]), row["ballot_paper_id"]),
        )
        size = max(1, min(PAGE, page_size))
        return {"count": len(found), "next": None, "previous": None, "results": found[:size]}


def is_feed(url: str) -> bool:
    """Whether a Democracy Club URL is the ballots feed."""
    return request_key(url, FEED_CURSOR).split("?")[0].endswith(FEED_PATH)


def build_feeds(answers: Iterable[Answer], bodies: Callable[[str], bytes]) -> dict[tuple[str, str], DcFeed]:
    """The feeds a Democracy Club recording holds, by (origin, the feed's key without cursor)."""
    feeds: dict[tuple[str, str], DcFeed] = {}
    for answer in sorted(answers, key=lambda a: a.at):
        if not is_feed(answer.url) or answer.method != "GET" or answer.body is None:
            continue
        if answer.status is None or not 200 <= answer.status < 300:
            continue
        try:
            document = json.loads(bodies(answer.body))
        except ValueError:
            continue
        rows = {
            str(row["ballot_paper_id"]): row
            for row in (document.get("results") or [] if isinstance(document, dict) else [])
            if isinstance(row, dict) and "ballot_paper_id" in row and isinstance(row.get("last_updated"), str)
        }
        feed = feeds.setdefault((origin_of(answer.url), request_key(answer.url, FEED_CURSOR)), DcFeed())
        feed.times.append(answer.at)
        feed.rows.append(rows)
    return feeds


def _moment(stamp: str) -> float:
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0
