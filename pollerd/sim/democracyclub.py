"""A Democracy Club API stand-in: the developer API (keyed and sandbox) and the candidates site's
ballots feed, with the service's habits.

- ``/api/v1/postcode/{pc}/``, ``/api/v1/address/{slug}/`` (``auth_token`` checked) and the keyless
  ``/api/v1/sandbox/...`` twins serve the sandbox postcodes of the documentation (AA11AA ... EH11YJ)
  with synthetic bodies in the documented shapes. No ETag, no Last-Modified.
- ``/api/v1/elections/`` is paged by limit/offset in an order that is not stable across requests;
  its ``next`` links drop ``auth_token`` and every filter but the few the service keeps.
- ``/api/next/ballots/?last_updated=`` is the candidates site's feed (strictly after, in order);
  that site answers 418 to the User-Agents of HTTP libraries and 429 (DRF) to anonymous callers.
- A firewall answers 403 beyond ``firewall_limit`` requests in 5 minutes.

``advance`` plays the timeline: candidates added, a ballot cancelled and replaced, a polling
station moved, an election withdrawn, and a step that only re-serialises (same data, new bytes).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from pollerd.core.waiting import wait_set
from pollerd.sim.dc_world import PICKER_SLUGS, POSTCODES, STEPS, DcWorld
from pollerd.sim.host import SimHost

LIBRARY_AGENTS = (
    "python-requests",
    "aiohttp",
    "python-urllib",
    "python-httpx",
    "go-http-client",
    "curl/",
    "wget/",
    "okhttp",
    "java/",
)
NEXT_KEEPS = ("limit", "offset", "current", "future", "coords", "metadata", "identifier_type")
ANONYMOUS_PER_MINUTE = 10

__all__ = ["PICKER_SLUGS", "POSTCODES", "STEPS", "DcServer", "DcWorld"]


class DcServer(SimHost):
    """Serves a DcWorld; ``keys`` are the accepted auth tokens."""

    def __init__(self, world: DcWorld, keys: set[str], firewall_limit: int = 150) -> None:
        super().__init__("democracyclub")
        self.world = world
        self.keys = keys
        self.firewall_limit = firewall_limit
        self._recent: deque[float] = deque()
        self._anonymous: deque[float] = deque()

    def respond(self, request: web.Request) -> web.Response:
        """Route like the service does (trailing slashes included)."""
        if not _within(self._recent, self.firewall_limit, 300):
            return web.Response(status=403, text="Forbidden by firewall: too many requests\n")
        path = request.path
        if path.startswith("/api/next/"):
            return self._candidates_site(request)
        parts = path.strip("/").split("/")
        sandbox = len(parts) > 2 and parts[2] == "sandbox"
        if sandbox:
            parts = parts[:2] + parts[3:]
        if parts[:2] != ["api", "v1"] or not path.endswith("/"):
            return _json(404, {"detail": "Not found."})
        if not sandbox and request.query.get("auth_token") not in self.keys:
            return _json(401, {"message": "Unauthorized"})
        return self._developer_api(request, parts[2:], sandbox)

    async def play(self, step_seconds: float, stop: asyncio.Event) -> None:
        """Advance the timeline one step every ``step_seconds`` until it ends or ``stop`` is set."""
        while self.world.step < STEPS and not await wait_set(stop, step_seconds):
            self.world.advance()

    def _developer_api(self, request: web.Request, parts: list[str], sandbox: bool) -> web.Response:
        world = self.world
        if len(parts) == 2 and parts[0] == "postcode":
            answer = world.postcode(parts[1].replace(" ", "").upper())
            if answer is None:
                if sandbox:
                    return web.Response(status=404)
                return _json(400, {"error": "Could not geocode from any source"})
            return self._body(answer)
        if len(parts) == 2 and parts[0] == "address":
            answer = world.address(parts[1])
            return self._body(answer) if answer else _json(404, {"error": "Address not found"})
        if parts == ["elections"] and not sandbox:
            return self._elections(request)
        if len(parts) == 2 and parts[0] == "elections" and not sandbox:
            election = world.elections.get(parts[1])
            return self._body(election) if election else _json(404, {"detail": "Not found."})
        return _json(404, {"detail": "Not found."})

    def _elections(self, request: web.Request) -> web.Response:
        limit = min(100, int(request.query.get("limit", 100)))
        offset = int(request.query.get("offset", 0))
        count, rows = self.world.page(offset, limit)
        kept = {k: v for k, v in request.query.items() if k in NEXT_KEEPS}
        following = {**kept, "limit": str(limit), "offset": str(offset + limit)}
        base = f"{request.url.origin()}{request.path}"
        body = {
            "count": count,
            "next": f"{base}?{urlencode(following)}" if offset + limit < count else None,
            "previous": None,
            "results": rows,
        }
        return self._body(body)

    def _candidates_site(self, request: web.Request) -> web.Response:
        agent = request.headers.get("User-Agent", "").lower()
        if not agent or any(library in agent for library in LIBRARY_AGENTS):
            return web.Response(status=418, text="I'm a teapot\n")
        if request.path != "/api/next/ballots/":
            return _json(404, {"detail": "Not found."})
        key = request.query.get("auth_token") or request.headers.get("Authorization") or ""
        if key.removeprefix("Token ") not in self.keys and not _within(
            self._anonymous, ANONYMOUS_PER_MINUTE, 60
        ):
            wait = 60 - int(time.monotonic() - self._anonymous[0])
            return _json(429, {"detail": f"Request was throttled. Expected available in {wait} seconds."})
        rows = self.world.ballots_after(request.query.get("last_updated"))
        size = min(100, int(request.query.get("page_size", 100)))
        return self._body({"count": len(rows), "next": None, "previous": None, "results": rows[:size]})

    def _body(self, document: Any) -> web.Response:
        if self.world.noise:  # same data, other bytes: keys reversed, indented, floats as 1.0
            text = json.dumps(_reordered(document), indent=1)
        else:
            text = json.dumps(document, separators=(",", ":"))
        return web.Response(text=text, content_type="application/json")


def _reordered(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _reordered(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_reordered(item) for item in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _within(recent: deque[float], limit: int, window: float) -> bool:
    now = time.monotonic()
    while recent and recent[0] <= now - window:
        recent.popleft()
    if len(recent) >= limit:
        return False
    recent.append(now)
    return True


def _json(status: int, document: dict[str, Any]) -> web.Response:
    return web.json_response(document, status=status)
