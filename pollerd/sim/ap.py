"""An AP Elections API replay server: a small synthetic US election night served the way AP does.

``/v2|v3/elections/{date}`` with ``x-api-key`` checked, the filters tests need (``statePostal``,
``officeID``, ``raceID``, ``level``), ETag/304, real ``minDateTime`` next links that return only the
races changed since (200 with only the link when nothing did), deltas paged with ``isTruncated``,
a per-minute quota per key answered with AP's 403, and scripted faults as on any SimHost.

The night has ``steps`` moments ten seconds apart; ``advance`` (tests) or ``play`` (demo) moves it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
from collections import deque
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from pollerd.core.waiting import wait_set
from pollerd.sim.ap_election import ELECTION_DATE, ApElection, values
from pollerd.sim.host import SimHost

__all__ = ["ELECTION_DATE", "ApElection", "ApServer"]


class ApServer(SimHost):
    """Serves an ApElection under AP's rules; ``keys`` are the accepted API keys."""

    def __init__(
        self,
        election: ApElection,
        keys: set[str],
        quota_per_minute: int = 60,
        page_size: int = 5,
        quota_window: float = 60.0,
        delays: Callable[[], tuple[float, float]] | None = None,
    ) -> None:
        super().__init__("ap")
        self.election = election
        self.keys = keys
        self.quota_per_minute = quota_per_minute
        self.quota_window = quota_window
        self.page_size = page_size
        self.quota_answers = 0
        self.delays = delays  # (before counting, before answering) per request: a slow, uneven AP
        self._recent: dict[str, deque[float]] = {}

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Answer, with the scripted delays: the request is counted between the two."""
        before, after = self.delays() if self.delays else (0.0, 0.0)
        await asyncio.sleep(before)
        response = await super().handle(request)
        await asyncio.sleep(after)
        return response

    def respond(self, request: web.Request) -> web.Response:
        """One AP answer (or AP's error)."""
        parts = request.path.strip("/").split("/")
        if len(parts) != 3 or parts[0] not in ("v2", "v3") or parts[1] != "elections":
            return _error(404, "Not found")
        key = request.headers.get("x-api-key") or request.headers.get("x-apikey")
        if key not in self.keys:
            return _error(401, "Invalid API key")
        if not self._within_quota(key):
            self.quota_answers += 1
            return _error(
                403, f"Per-minute Quota ({self.quota_per_minute}) Exceeded, try again in a little bit."
            )
        if parts[2] != ELECTION_DATE:
            return _error(400, f"No election found for date {parts[2]}")
        params = dict(request.query)
        unknown = values(params.get("statePostal")) - set(self.election.states)
        if unknown:
            return _error(400, f"Invalid statePostal value: {','.join(sorted(unknown))}")
        return self._elections(request, parts[0], params)

    def _elections(self, request: web.Request, version: str, params: dict[str, str]) -> web.Response:
        election = self.election
        since = election.step_of(params["minDateTime"]) if "minDateTime" in params else None
        until = int(params.get("untilStep", election.step))
        offset = int(params.get("offset", 0))
        races = election.select(params, since, until)
        truncated = version == "v3" and since is not None and len(races) > offset + self.page_size
        if since is not None:
            races = races[offset : offset + self.page_size] if version == "v3" else races
        link = self._next_link(request, params, until, offset if truncated else None)
        if since is not None and not races:
            return self._json(request, {"nextrequest": link}, etag=None)
        document: dict[str, Any] = {
            "electionDate": ELECTION_DATE,
            "timestamp": election.timestamp(),
            "races": races,
            "nextrequest": link,
        }
        if version == "v3":
            document = {"apiVersion": "3.0", **document, "isTruncated": truncated}
        etag = None if since is not None else _etag(races)
        if etag is not None and request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        return self._json(request, document, etag)

    def _next_link(
        self, request: web.Request, params: dict[str, str], until: int, truncated_at: int | None
    ) -> str:
        """AP's ``nextrequest``: the next page of a truncated delta, else the changes since now."""
        base = {k: v for k, v in params.items() if k not in ("minDateTime", "untilStep", "offset")}
        if truncated_at is not None:
            follow = {
                **base,
                "minDateTime": params["minDateTime"],
                "untilStep": str(until),
                "offset": str(truncated_at + self.page_size),
            }
        else:
            follow = {**base, "minDateTime": self.election.timestamp(until)}
        return f"{request.url.origin()}{request.path}?{urlencode(follow, safe=',:')}"

    def _json(self, request: web.Request, document: dict[str, Any], etag: str | None) -> web.Response:
        body = json.dumps(document).encode()
        headers = {"ETag": etag} if etag else {}
        if request.query.get("includesignature") == "sha256":
            headers["AP_SIGNATURE_SHA256"] = base64.b64encode(hashlib.sha256(body).digest()).decode()
        return web.Response(body=body, content_type="application/json", headers=headers)

    def _within_quota(self, key: str) -> bool:
        now = time.monotonic()
        recent = self._recent.setdefault(key, deque())
        while recent and recent[0] <= now - self.quota_window:
            recent.popleft()
        if len(recent) >= self.quota_per_minute:
            return False
        recent.append(now)
        return True

    def full_races(self, params: dict[str, str]) -> list[dict[str, Any]]:
        """The races a full request with these filters returns now (the truth for tests)."""
        return self.election.select(params, None, self.election.step)

    async def play(self, step_seconds: float, stop: asyncio.Event) -> None:
        """Advance one step every ``step_seconds`` until the night ends or ``stop`` is set."""
        while self.election.step < self.election.steps and not await wait_set(stop, step_seconds):
            self.election.advance()


def _etag(races: list[dict[str, Any]]) -> str:
    digest = hashlib.md5(json.dumps(races, sort_keys=True).encode(), usedforsecurity=False)
    return f'"{digest.hexdigest()[:16]}"'


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"errorCode": status, "errorMessage": message}, status=status)
