"""``pollerd replay``: a recording served as the upstreams it came from, each recorded origin on
a local port, at the recorded pace compressed by ``speed``.

Each URL answers what the upstream answered at that moment of the night (timeline; before its
first recorded answer, that answer), AP queries follow their ``nextrequest`` chains (ap_chain)
and Democracy Club's ballots feed its cursors (dc_feed), bodies name the replay's ports instead
of the recorded hosts, and a control port tells where the night is (``GET /status``) and moves it
(``POST /control``). The night can start held (``paused``: until ``{"resume": true}``) or at the
first request any origin receives (``start_on_request``), so a client that takes a while to
start sees the night from its beginning.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from pollerd.core.payload import PayloadRejected, strict_json
from pollerd.record.archive import Recording
from pollerd.replay.ap_chain import CURSOR, ApChain, build_chains, zero_counts
from pollerd.replay.bodies import Bodies, BodyMissing, Renderer
from pollerd.replay.clock import ReplayClock, check_speed, iso, parse_moment
from pollerd.replay.dc_feed import FEED_CURSOR, PAGE, DcFeed, build_feeds, is_feed
from pollerd.replay.timeline import Served, UrlTimeline, build_timelines, origin_of, request_key
from pollerd.sim.server import SimServer
from pollerd.telemetry.tasks import describe

_VALIDATING = ("etag", "last-modified", "cache-control")


@dataclass(frozen=True)
class ReplayOptions:
    """How to play a recording: ``speed`` times faster, from ``begin`` until ``until`` (Unix
    times of the night; None: its start and end), AP counts zeroed or not."""

    speed: float = 1.0
    begin: str | None = None
    until: str | None = None
    zero_counts: bool = False
    paused: bool = False  # held at the start until POST /control {"resume": true}
    start_on_request: bool = False  # held until the first request any origin receives


@dataclass
class Counts:
    """What the replay has answered."""

    requests: int = 0
    by_status: dict[str, int] = field(default_factory=dict)


class Replay:
    """Serves recordings; ``open`` listens, ``close`` stops."""

    def __init__(
        self,
        recordings: list[Recording],
        options: ReplayOptions = ReplayOptions(),
        renderers: Mapping[str, Renderer] | None = None,
    ) -> None:
        times = [a.at for r in recordings for a in r.answers]
        if not times:
            raise ValueError("the recording holds no complete answer")
        start, end = min(times), max(times)
        self.recordings = recordings
        self.options = options
        self.clock = ReplayClock(
            start,
            end,
            options.speed,
            None if options.begin is None else parse_moment(options.begin, start),
            None if options.until is None else parse_moment(options.until, start),
            held=options.paused or options.start_on_request,
        )
        self.waiting_for_request = options.start_on_request
        self.bodies = Bodies(recordings, renderers)
        self.timelines: dict[tuple[str, str], UrlTimeline] = {}
        self.chains: dict[tuple[str, str], ApChain] = {}
        self.feeds: dict[tuple[str, str], DcFeed] = {}
        self.local: dict[str, str] = {}  # recorded origin -> the replay's
        self.control_url = ""
        self.counts = Counts()
        self._server = SimServer()

    @property
    def origins(self) -> list[str]:
        """Every recorded origin: those answers came from, and those the sources' configs name."""
        found = {origin_of(a.url) for r in self.recordings for a in r.answers}
        for recording in self.recordings:
            for url in _config_urls(recording.info.config):
                found.add(origin_of(url))
        return sorted(found)

    async def open(self, port: int = 0, ports: Mapping[str, int] | None = None) -> None:
        """Read the recording and listen: the control on ``port``, each origin on the port
        ``ports`` gives it, else on the ports after ``port`` (any free port when ``port`` is 0)."""
        await asyncio.to_thread(self._build)
        ports = dict(ports or {})
        following = port + 1 if port else 0
        try:
            for origin in self.origins:
                if origin not in ports:
                    while following and following in ports.values():
                        following += 1
                    ports[origin] = following
                    following = following + 1 if following else 0
                self.local[origin] = await self._server.serve(self._origin_app(origin), ports[origin])
            self.bodies.point(self.local)
            self.control_url = await self._server.serve(self._control_app(), port)
        except OSError:
            await self._server.close()
            raise

    async def close(self) -> None:
        """Stop listening."""
        await self._server.close()

    def local_url(self, url: str) -> str:
        """A recorded URL as the replay serves it."""
        origin = origin_of(url)
        return self.local.get(origin, origin) + url[len(origin) :]

    def status(self) -> dict[str, Any]:
        """Where the night is and what was served (``GET /status``)."""
        return {
            **self.clock.status(),
            "waiting_for_first_request": self.waiting_for_request,
            "requests": self.counts.requests,
            "by_status": dict(sorted(self.counts.by_status.items())),
            "sources": [
                {"name": r.info.name, "kind": r.info.kind, "answers": len(r.answers)} for r in self.recordings
            ],
            "origins": self.local,
        }

    def _build(self) -> None:
        damaged = [problem for recording in self.recordings for problem in recording.check_bodies()]
        if damaged:
            more = f" (and {len(damaged) - 1} more)" if len(damaged) > 1 else ""
            raise ValueError(f"the recording is damaged: {damaged[0]}{more}")
        try:
            self._read_chains()
        except (BodyMissing, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"the recording is damaged: {describe(exc)}") from None

    def _read_chains(self) -> None:
        ap = [a for r in self.recordings if r.info.kind == "ap" for a in r.answers]
        feed = [
            a for r in self.recordings if r.info.kind == "democracyclub" for a in r.answers if is_feed(a.url)
        ]
        other = [
            a
            for r in self.recordings
            if r.info.kind != "ap"
            for a in r.answers
            if r.info.kind != "democracyclub" or not is_feed(a.url)
        ]
        self.chains = build_chains(ap, self.bodies.raw)
        self.feeds = build_feeds(feed, self.bodies.raw)
        self.timelines = build_timelines(other)
        unchained = {k: t for k, t in build_timelines(ap).items() if not self._chain_of(*k)}
        self.timelines.update(unchained)  # an AP answer outside any chain: a plain URL

    def _chain_of(self, origin: str, key: str) -> ApChain | None:
        base = request_key(key, CURSOR)
        return self.chains.get((origin, base))

    def _origin_app(self, origin: str) -> web.Application:
        async def handle(request: web.Request) -> web.StreamResponse:
            if self.waiting_for_request:  # the night starts with the first request
                self.waiting_for_request = False
                self.clock.resume()
            response = await self._answer(origin, request)
            self.counts.requests += 1
            status = str(response.status)
            self.counts.by_status[status] = self.counts.by_status.get(status, 0) + 1
            return response

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        return app

    async def _answer(self, origin: str, request: web.Request) -> web.StreamResponse:
        if request.method not in ("GET", "HEAD"):
            return web.Response(status=405, headers={"Allow": "GET, HEAD"})
        now = self.clock.now()
        key = request_key(request.path_qs)
        chain = self._chain_of(origin, key)
        if chain is not None:
            return await self._ap(chain, request, now)
        feed = self.feeds.get((origin, request_key(request.path_qs, FEED_CURSOR)))
        if feed is not None:
            return self._feed(feed, request, now)
        timeline = self.timelines.get((origin, key))
        served = timeline.at(now) if timeline is not None else None
        if served is None:
            return web.Response(status=404, text=f"not recorded by {iso(now)}\n")
        if served.status is None:
            assert request.transport is not None
            request.transport.close()
            raise asyncio.CancelledError  # the recording got no answer here: neither do you
        return await self._file(served, request)

    async def _file(self, served: Served, request: web.Request) -> web.Response:
        headers = dict(served.headers)
        if served.good and _not_modified(request, served):
            kept = {k: v for k, v in headers.items() if k.lower() in _VALIDATING}
            return web.Response(status=304, headers=kept)
        if request.method == "HEAD" or served.body is None:
            if served.good:
                headers["Content-Length"] = str(served.size)
            return web.Response(status=served.status or 200, headers=headers)
        try:
            body = await asyncio.to_thread(self.bodies.served, served.body)
        except BodyMissing as exc:
            return web.Response(status=500, text=f"replay: {exc}\n")
        return web.Response(status=served.status or 200, body=body, headers=headers)

    def _feed(self, feed: DcFeed, request: web.Request, now: float) -> web.Response:
        size = request.query.get("page_size", "")
        page = feed.answer(now, request.query.get("last_updated"), int(size) if size.isdigit() else PAGE)
        body = self.bodies.pointed(json.dumps(page, ensure_ascii=False).encode())
        return web.Response(body=body, content_type="application/json")

    async def _ap(self, chain: ApChain, request: web.Request, now: float) -> web.Response:
        params = dict(request.query)
        since = int(params["replayStep"]) if params.get("replayStep", "").lstrip("-").isdigit() else None
        # the query's own URL, asked before the recorder first asked it: its first answer
        step = chain.step_at(now) if since is not None else max(chain.step_at(now), 0)
        zero = self.options.zero_counts or params.get("setZeroCounts", "").lower() == "true"
        link = self._link(chain, request, max(step, since if since is not None else -1))
        if since is not None and step <= since:
            return _json({"nextrequest": self._link(chain, request, since)})  # AP: nothing new
        races = chain.races(step, -1 if since is None else since)
        if zero:
            races = [zero_counts(race) for race in races]
        document: dict[str, Any] = {**chain.meta, "timestamp": iso(now), "races": races, "nextrequest": link}
        if "apiVersion" in chain.meta:
            document["isTruncated"] = False
        if since is not None:
            return _json(document)
        etag = chain.etag(step) + ('-z"' if zero else "")
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        return _json(document, {"ETag": etag})

    def _link(self, chain: ApChain, request: web.Request, step: int) -> str:
        kept = [(k, v) for k, v in request.query.items() if k not in CURSOR]
        at = chain.times[step] if 0 <= step < len(chain.times) else self.clock.start
        query = urlencode([*kept, ("minDateTime", iso(at)), ("replayStep", str(step))], safe=",:")
        return f"{request.url.origin()}{request.path}?{query}"

    def _control_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/status", self._get_status)
        app.router.add_post("/control", self._post_control)
        return app

    async def _get_status(self, _request: web.Request) -> web.Response:
        return _json(self.status())

    async def _post_control(self, request: web.Request) -> web.Response:
        """``{"pause": true}``, ``{"resume": true}``, ``{"jump": "2023-10-22T14:00Z" | "90m"}``,
        ``{"speed": 20}``, or several at once."""
        try:
            order = strict_json(await request.read())
            if not isinstance(order, dict):
                raise ValueError("the body must be a JSON object")
            unknown = set(order) - {"pause", "resume", "jump", "speed"}
            if unknown:
                raise ValueError(f"unknown order {sorted(unknown)[0]!r}: give pause, resume, jump or speed")
            speed = None if order.get("speed") is None else check_speed(order["speed"])
            jump = order.get("jump")
            if jump is not None and not isinstance(jump, str):
                raise ValueError('jump is a moment ("2023-10-22T14:00Z") or a duration ("90m")')
            moment = None if jump is None else parse_moment(jump, self.clock.start)
            for flag in ("pause", "resume"):
                if not isinstance(order.get(flag, False), bool):
                    raise ValueError(f"{flag} is true or false")
        except PayloadRejected as exc:
            return _json({"error": f"the body is not JSON: {exc.detail}"}, status=400)
        except (ValueError, TypeError) as exc:
            return _json({"error": str(exc)}, status=400)
        # every order checked first: a bad one changes nothing
        if speed is not None:
            self.clock.set_speed(speed)
        if moment is not None:
            self.clock.jump(moment)
        if order.get("pause"):
            self.clock.pause()
        if order.get("resume"):
            self.clock.resume()
        return _json(self.status())


def _config_urls(config: Mapping[str, Any]) -> list[str]:
    urls = [config[k] for k in ("api", "candidates_api") if isinstance(config.get(k), str)]
    urls += [u for u in config.get("urls") or [] if isinstance(u, str)]
    urls += [r["url"] for r in config.get("resources") or [] if isinstance(r, dict) and "url" in r]
    return urls


def _not_modified(request: web.Request, served: Served) -> bool:
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None and served.etag is not None:
        return if_none_match == served.etag
    since = request.headers.get("If-Modified-Since")
    return since is not None and served.last_modified is not None and since == served.last_modified


def _json(document: dict[str, Any], headers: dict[str, str] | None = None, status: int = 200) -> web.Response:
    body = json.dumps(document, ensure_ascii=False).encode()
    return web.Response(status=status, body=body, content_type="application/json", headers=headers)
