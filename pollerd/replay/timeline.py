"""What each recorded URL served over the night: a timeline of answers, built from every HEAD,
GET, 304 and failure recorded for it, so a client polling at any interval is served what the
upstream served at that moment.

A GET with a body starts a version; a HEAD or 304 naming a known version (by its validators)
returns to it; an error status or a request that got no answer is served as such until the next
good answer. Answers that only confirm the current state add nothing. Before its first recorded
answer a URL serves that answer. (URLs that exist only later by construction, AP's
``nextrequest`` links and Democracy Club's feed cursors, are chains, not timelines.)
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit

from pollerd.record.archive import Answer

# query parameters that carry credentials: never part of what identifies a resource
CREDENTIALS = frozenset({"auth_token", "apikey", "api_key", "x-api-key", "key", "token", "access_token"})
_NOT_REPLAYED = frozenset(
    {"date", "server", "content-length", "transfer-encoding", "content-encoding", "connection", "keep-alive"}
)


def origin_of(url: str) -> str:
    """``scheme://host:port`` of a URL."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def request_key(url: str, leave_out: Iterable[str] = ()) -> str:
    """What identifies a resource of an origin: the path and the query's parameters in order of
    name, without credentials (and without ``leave_out``)."""
    parts = urlsplit(url)
    skip = {name.lower() for name in leave_out} | CREDENTIALS
    query = sorted((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k.lower() not in skip)
    return (parts.path or "/") + (f"?{urlencode(query, safe=',:')}" if query else "")


@dataclass(frozen=True)
class Served:
    """What the URL answers at a moment: a status (None: the connection is dropped), the headers
    worth replaying, and the body's SHA-256 (None: no body)."""

    status: int | None
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None
    size: int = 0

    @property
    def etag(self) -> str | None:
        """The ETag it carries."""
        return self._header("etag")

    @property
    def last_modified(self) -> str | None:
        """The Last-Modified it carries."""
        return self._header("last-modified")

    @property
    def good(self) -> bool:
        """A 2xx answer: a version of the resource."""
        return self.status is not None and 200 <= self.status < 300

    def same_as(self, other: Served | None) -> bool:
        """Whether a client could tell the two apart (headers like Date aside)."""
        return other is not None and (self.status, self.body, self.etag, self.last_modified) == (
            other.status,
            other.body,
            other.etag,
            other.last_modified,
        )

    def _header(self, name: str) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == name), None)


@dataclass
class UrlTimeline:
    """A URL's answers over the night, in time order."""

    times: list[float] = field(default_factory=list)
    states: list[Served] = field(default_factory=list)

    def at(self, moment: float) -> Served | None:
        """What the URL answered at ``moment``; before its first recorded answer, that answer
        (what the upstream held when the recording began: a client that starts before the
        recorder first asked is served it, not a 404). None: nothing recorded."""
        index = bisect.bisect_right(self.times, moment) - 1
        return self.states[max(index, 0)] if self.states else None

    def versions(self) -> int:
        """How many versions (distinct bodies in a row) the URL served."""
        bodies = [s.body for s in self.states if s.good]
        return sum(1 for n, body in enumerate(bodies) if n == 0 or body != bodies[n - 1])

    def add(self, moment: float, served: Served) -> None:
        self.times.append(moment)
        self.states.append(served)


def build_timelines(answers: Iterable[Answer]) -> dict[tuple[str, str], UrlTimeline]:
    """Every URL's timeline, by (origin, request key)."""
    by_url: dict[tuple[str, str], list[Answer]] = {}
    for answer in sorted(answers, key=lambda a: a.at):
        by_url.setdefault((origin_of(answer.url), request_key(answer.url)), []).append(answer)
    return {url: _timeline(recorded) for url, recorded in by_url.items()}


def _timeline(answers: list[Answer]) -> UrlTimeline:
    by_validators: dict[tuple[str | None, str | None], Served] = {}
    for answer in answers:
        if answer.method == "GET" and answer.body is not None and _good(answer.status):
            version = _served(answer)
            by_validators.setdefault((version.etag, version.last_modified), version)
    timeline = UrlTimeline()
    current: Served | None = None
    last_good: Served | None = None
    for answer in answers:
        after = _state_after(answer, last_good, by_validators)
        if after is None or after.same_as(current):
            continue
        timeline.add(answer.at, after)
        current = after
        if after.good:
            last_good = after
    return timeline


def _state_after(
    answer: Answer, last_good: Served | None, by_validators: dict[tuple[str | None, str | None], Served]
) -> Served | None:
    """What the URL serves after this answer (None: the answer tells nothing new)."""
    if answer.status is None:
        return Served(None)
    if answer.status == 304:
        return last_good
    if not _good(answer.status):
        return _served(answer)
    if answer.method == "GET":
        return _served(answer) if answer.body is not None else None
    validators = _served(answer)
    if validators.etag is None and validators.last_modified is None:
        return last_good  # a HEAD without validators says only that the URL answers
    if last_good is not None and (last_good.etag, last_good.last_modified) == (
        validators.etag,
        validators.last_modified,
    ):
        return last_good
    return by_validators.get((validators.etag, validators.last_modified))


def _served(answer: Answer) -> Served:
    headers = {k: v for k, v in answer.headers.items() if k.lower() not in _NOT_REPLAYED}
    return Served(answer.status, headers, answer.body, answer.size)


def _good(status: int | None) -> bool:
    return status is not None and 200 <= status < 300
