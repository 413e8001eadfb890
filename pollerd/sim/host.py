"""What every simulated host shares: scripted faults, a request log, in-flight counting."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from aiohttp import web

FaultKind = Literal["status", "slow", "truncate", "html", "reset", "body"]
_HTML_PAGE = b"<!DOCTYPE html><html><body><h1>Service temporarily unavailable</h1></body></html>"


@dataclass
class Fault:
    """A scripted misbehaviour for the next ``count`` matching requests (-1: until cleared)."""

    kind: FaultKind
    count: int = 1
    status: int = 503
    retry_after: str | None = None
    delay: float = 0.0
    methods: frozenset[str] = frozenset({"GET", "HEAD"})
    body: bytes = b""  # kind "body": answered with this body (a poisoned answer)


@dataclass(frozen=True)
class RequestRecord:
    """One request the host received and how it answered."""

    at: float
    method: str
    path: str
    status: int
    sent_bytes: int
    headers: dict[str, str]
    query: str = ""
    etag: str | None = None  # the answer's ETag (the simulated S3 hosts': the body's MD5)


class SimHost:
    """Answers requests through ``respond``, unless a queued fault says otherwise; logs each one."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.faults: dict[str, list[Fault]] = {}
        self.log: list[RequestRecord] = []
        self.on_request: Callable[[RequestRecord], None] | None = None
        self.in_flight = 0
        self.most_in_flight = 0

    def respond(self, request: web.Request) -> web.Response:
        """The fault-free answer (each kind of host defines it)."""
        raise NotImplementedError

    def body_at(self, path: str) -> bytes | None:
        """The body a path would serve now (for the truncation fault)."""
        return None

    def inject(self, path: str, fault: Fault) -> None:
        """Queue a fault for ``path`` ("*" for every path)."""
        self.faults.setdefault(path, []).append(fault)

    def clear_faults(self) -> None:
        """Remove every queued fault."""
        self.faults.clear()

    def requests(self, method: str | None = None, path: str | None = None) -> list[RequestRecord]:
        """Logged requests, filtered."""
        return [
            r for r in self.log if (method is None or r.method == method) and (path is None or r.path == path)
        ]

    def app(self) -> web.Application:
        """An aiohttp application serving every path of this host."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Answer one request: a fault if one is queued, else ``respond``."""
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            return await self._answer(request)
        finally:
            self.in_flight -= 1

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        fault = self._take_fault(request)
        response: web.StreamResponse
        if fault is not None and fault.kind == "slow":
            await asyncio.sleep(fault.delay)
            fault = None
        if fault is None:
            response = self.respond(request)
        elif fault.kind == "truncate":
            return await self._truncated(request)
        elif fault.kind == "reset":
            self._record(request, 0, 0)
            assert request.transport is not None
            request.transport.close()
            raise asyncio.CancelledError  # aiohttp drops the connection without an answer
        elif fault.kind == "html":
            response = web.Response(body=_HTML_PAGE, content_type="text/html")
        elif fault.kind == "body":
            response = web.Response(status=fault.status, body=fault.body, content_type="application/json")
        else:
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            response = web.Response(status=fault.status, text=f"fault {fault.status}\n", headers=headers)
        sent = response.content_length or 0
        self._record(
            request, response.status, sent if request.method == "GET" else 0, response.headers.get("ETag")
        )
        return response

    def _take_fault(self, request: web.Request) -> Fault | None:
        for key in (request.path, "*"):
            queue = self.faults.get(key) or []
            for fault in queue:
                if request.method in fault.methods:
                    if fault.count > 0:
                        fault.count -= 1
                        if fault.count == 0:
                            queue.remove(fault)
                    return fault
        return None

    async def _truncated(self, request: web.Request) -> web.StreamResponse:
        body = self.body_at(request.path) or b"{}" * 100
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.content_length = len(body)
        await response.prepare(request)
        await response.write(body[: len(body) // 2])
        self._record(request, 200, len(body) // 2)
        assert request.transport is not None
        request.transport.close()
        return response

    def _record(self, request: web.Request, status: int, sent: int, etag: str | None = None) -> None:
        record = RequestRecord(
            time.time(),
            request.method,
            request.path,
            status,
            sent,
            dict(request.headers),
            request.query_string,
            etag,
        )
        self.log.append(record)
        if self.on_request is not None:
            self.on_request(record)
