"""A file host that behaves like S3 or a plain web server: versioned files, validators,
conditional requests, gzip, and scripted faults. Every request is logged for tests and summaries.
"""

from __future__ import annotations

import gzip
import hashlib
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Literal

from aiohttp import web

from pollerd.sim.host import Fault, RequestRecord, SimHost

__all__ = ["Fault", "FileHost", "RequestRecord", "ServedFile", "Version"]

ValidatorMode = Literal["full", "etag", "last_modified", "none"]
_GZIP_MIN = 256


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
    gzip_encoding: bool = True  # answer Accept-Encoding: gzip (S3 does not)
    keep: int | None = None  # how many versions (with bodies) to hold; None: all
    versions: list[Version] = field(default_factory=list)
    published: int = 0
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
        self.published += 1
        digest = hashlib.md5(body, usedforsecurity=False).hexdigest()
        version = Version(self.published, body, moment, stamp, f'"{digest}"')
        self.versions.append(version)
        if self.keep is not None and len(self.versions) > self.keep:
            del self.versions[: -self.keep]
            self._gzipped.clear()
        return version

    def gzipped(self, version: Version) -> bytes:
        """The version's body, gzip-compressed (cached)."""
        if version.number not in self._gzipped:
            self._gzipped[version.number] = gzip.compress(version.body, compresslevel=5)
        return self._gzipped[version.number]


class FileHost(SimHost):
    """Serves ``ServedFile``s; tests and scenarios publish versions and inject faults."""

    def __init__(self, name: str = "files") -> None:
        super().__init__(name)
        self.files: dict[str, ServedFile] = {}

    def add(self, path: str, **options: object) -> ServedFile:
        """Declare a file (see ServedFile for options)."""
        served = ServedFile(path, **options)  # type: ignore[arg-type]  # options are ServedFile's
        self.files[path] = served
        return served

    def publish(self, path: str, body: bytes, at: float | None = None) -> Version:
        """Publish a new version of a declared file (``at``: its Last-Modified, default now)."""
        return self.files[path].publish(body, at)

    def body_at(self, path: str) -> bytes | None:
        """The current body of a file."""
        served = self.files.get(path)
        return served.current.body if served and served.current else None

    def respond(self, request: web.Request) -> web.Response:
        """The file, with validators and conditional answers as the host's mode says."""
        served = self.files.get(request.path)
        version = served.current if served else None
        if served is None or version is None:
            return web.Response(status=404, text="not found\n")
        if request.method == "HEAD" and not served.head_allowed:
            return web.Response(status=405, headers={"Allow": "GET"})
        if request.method not in ("GET", "HEAD"):
            return web.Response(status=405, headers={"Allow": "GET, HEAD"})
        headers = self.validator_headers(served, version)
        if self._not_modified(request, served, version):
            return web.Response(status=304, headers=headers)
        body = version.body
        if (
            served.gzip_encoding
            and "gzip" in request.headers.get("Accept-Encoding", "")
            and len(body) >= _GZIP_MIN
        ):
            body = served.gzipped(version)
            headers["Content-Encoding"] = "gzip"
            headers["Vary"] = "Accept-Encoding"
        headers["Content-Type"] = served.content_type
        if request.method == "HEAD":
            headers["Content-Length"] = str(len(body))
            return web.Response(status=200, headers=headers)
        return web.Response(status=200, body=body, headers=headers)

    @staticmethod
    def validator_headers(served: ServedFile, version: Version) -> dict[str, str]:
        """The ETag and Last-Modified the file's validator mode sends for a version."""
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
