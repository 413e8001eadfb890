"""A file host that behaves like S3 or a plain web server: versioned files, validators,
conditional requests, gzip, and scripted faults. Every request is logged for tests and summaries.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Literal

from aiohttp import web

ValidatorMode = Literal["full", "etag", "last_modified", "none"]
FaultKind = Literal["status", "slow", "truncate", "html", "reset"]
_GZIP_MIN = 256
_HTML_PAGE = b"<!DOCTYPE html><html><body><h1>Service temporarily unavailable</h1></body></html>"


@dataclass(frozen=True)
class Version:
    """One published state of a file."""

    number: int
    body: bytes
    published_at: float
    last_modified: str
    etag: str


@dataclass
class ServedFile:
    """A path on the host and every version published there."""

    path: str
    validators: ValidatorMode = "full"
    head_allowed: bool = True
    content_type: str = "application/json"
    versions: list[Version] = field(default_factory=list)
    _gzipped: dict[int, bytes] = field(default_factory=dict)

    @property
    def current(self) -> Version | None:
        """The version served now (None before the first publication: 404)."""
        return self.versions[-1] if self.versions else None

    def publish(self, body: bytes, at: float | None = None) -> Version:
        """Make ``body`` the current version. Like S3, the ETag is the body's MD5, so a re-upload
        of identical bytes changes only Last-Modified (when a second has passed)."""
        moment = time.time() if at is None else at
        stamp = format_datetime(datetime.fromtimestamp(moment, UTC), usegmt=True)
        number = len(self.versions) + 1
        digest = hashlib.md5(body, usedforsecurity=False).hexdigest()
        version = Version(number, body, moment, stamp, f'"{digest}"')
        self.versions.append(version)
        return version

    def gzipped(self, version: Version) -> bytes:
        """The version's body, gzip-compressed (cached)."""
        if version.number not in self._gzipped:
            self._gzipped[version.number] = gzip.compress(version.body, compresslevel=5)
        return self._gzipped[version.number]


@dataclass
class Fault:
    """A scripted misbehaviour for the next ``count`` matching requests (-1: until cleared)."""

    kind: FaultKind
    count: int = 1
    status: int = 503
    retry_after: str | None = None
    delay: float = 0.0
    methods: frozenset[str] = frozenset({"GET", "HEAD"})


@dataclass(frozen=True)
class RequestRecord:
    """One request the host received and how it answered."""

    at: float
    method: str
    path: str
    status: int
    sent_bytes: int
    headers: dict[str, str]


class FileHost:
    """Serves ``ServedFile``s; tests and scenarios publish versions and inject faults."""

    def __init__(self, name: str = "files") -> None:
        self.name = name
        self.files: dict[str, ServedFile] = {}
        self.faults: dict[str, list[Fault]] = {}
        self.log: list[RequestRecord] = []
        self.on_request: Callable[[RequestRecord], None] | None = None
        self.in_flight = 0
        self.most_in_flight = 0

    def add(self, path: str, **options: object) -> ServedFile:
        """Declare a file (see ServedFile for options)."""
        served = ServedFile(path, **options)  # type: ignore[arg-type]  # options are ServedFile's
        self.files[path] = served
        return served

    def publish(self, path: str, body: bytes) -> Version:
        """Publish a new version of a declared file."""
        return self.files[path].publish(body)

    def inject(self, path: str, fault: Fault) -> None:
        """Queue a fault for ``path`` ("*" for every path)."""
        self.faults.setdefault(path, []).append(fault)

    def clear_faults(self) -> None:
        """Remove every queued fault."""
        self.faults.clear()

    def requests(self, method: str | None = None, path: str | None = None) -> list[RequestRecord]:
        """Logged requests, filtered."""
        return [r for r in self.log
                if (method is None or r.method == method) and (path is None or r.path == path)]

    def app(self) -> web.Application:
        """An aiohttp application serving every path of this host."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Answer one request: a fault if one is queued, else the file."""
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
            response = self._serve(request)
        elif fault.kind == "truncate":
            return await self._truncated(request)
        elif fault.kind == "reset":
            self._record(request, 0, 0)
            assert request.transport is not None
            request.transport.close()
            raise asyncio.CancelledError  # aiohttp drops the connection without an answer
        elif fault.kind == "html":
            response = web.Response(body=_HTML_PAGE, content_type="text/html")
        else:
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            response = web.Response(status=fault.status, text=f"fault {fault.status}\n",
                                    headers=headers)
        sent = response.content_length or 0
        self._record(request, response.status, sent if request.method == "GET" else 0)
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

    def _serve(self, request: web.Request) -> web.Response:
        served = self.files.get(request.path)
        version = served.current if served else None
        if served is None or version is None:
            return web.Response(status=404, text="not found\n")
        if request.method == "HEAD" and not served.head_allowed:
            return web.Response(status=405, headers={"Allow": "GET"})
        if request.method not in ("GET", "HEAD"):
            return web.Response(status=405, headers={"Allow": "GET, HEAD"})
        headers = self._validator_headers(served, version)
        if self._not_modified(request, served, version):
            return web.Response(status=304, headers=headers)
        body = version.body
        if "gzip" in request.headers.get("Accept-Encoding", "") and len(body) >= _GZIP_MIN:
            body = served.gzipped(version)
            headers["Content-Encoding"] = "gzip"
            headers["Vary"] = "Accept-Encoding"
        headers["Content-Type"] = served.content_type
        if request.method == "HEAD":
            headers["Content-Length"] = str(len(body))
            return web.Response(status=200, headers=headers)
        return web.Response(status=200, body=body, headers=headers)

    @staticmethod
    def _validator_headers(served: ServedFile, version: Version) -> dict[str, str]:
        headers = {}
        if served.validators in ("full", "etag"):
            headers["ETag"] = version.etag
        if served.validators in ("full", "last_modified"):
            headers["Last-Modified"] = version.last_modified
        return headers

    @staticmethod
    def _not_modified(request: web.Request, served: ServedFile, version: Version) -> bool:
        if_none_match = request.headers.get("If-None-Match")
        if if_none_match is not None and served.validators in ("full", "etag"):
            return if_none_match == version.etag
        since = request.headers.get("If-Modified-Since")
        if since is not None and served.validators in ("full", "last_modified"):
            try:
                return parsedate_to_datetime(since) >= parsedate_to_datetime(version.last_modified)
            except (TypeError, ValueError):
                return False
        return False

    async def _truncated(self, request: web.Request) -> web.StreamResponse:
        served = self.files.get(request.path)
        body = served.current.body if served and served.current else b"{}" * 100
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.content_length = len(body)
        await response.prepare(request)
        await response.write(body[: len(body) // 2])
        self._record(request, 200, len(body) // 2)
        assert request.transport is not None
        request.transport.close()
        return response

    def _record(self, request: web.Request, status: int, sent: int) -> None:
        record = RequestRecord(time.time(), request.method, request.path, status, sent,
                               dict(request.headers))
        self.log.append(record)
        if self.on_request is not None:
            self.on_request(record)
