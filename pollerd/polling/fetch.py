"""HTTP I/O: HEAD, conditional GET and streaming download, under global and per-host limits."""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

import aiohttp
import structlog
from multidict import CIMultiDictProxy
from yarl import URL

from pollerd.core.backoff import parse_retry_after
from pollerd.core.hosts import ANY_HOST, HostPolicy
from pollerd.core.model import Download, Validators
from pollerd.core.payload import PayloadRejected
from pollerd.telemetry.metrics import Metrics

_CHUNK = 64 * 1024
_WRITE_BATCH = 1024 * 1024
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 5
_CONDITIONAL = ("If-None-Match", "If-Modified-Since")
_ERROR_BODY_BYTES = 2048


class FetchFailure(Exception):
    """A request that did not produce a usable answer (status, timeout, connection)."""

    def __init__(
        self,
        reason: str,
        detail: str,
        status: int | None = None,
        retry_after: float | None = None,
        body: bytes = b"",
    ) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.status = status
        self.retry_after = retry_after
        self.body = body  # the start of an error answer's body (APIs explain themselves there)

    @property
    def host_wide(self) -> bool:
        """429 and 503 speak for the whole host, not just this URL."""
        return self.status in (429, 503)


@dataclass(frozen=True)
class HeadAnswer:
    """What a HEAD said."""

    status: int
    validators: Validators
    final_url: str
    retry_after: float | None
    content_length: int | None = None  # of the body as it would be sent (None if encoded)


@dataclass(frozen=True)
class GetAnswer:
    """A GET's outcome: a 304 (no download) or a 2xx body streamed to disk."""

    status: int
    validators: Validators
    download: Download | None
    headers: dict[str, str]


def host_of(url: str) -> str:
    """The host:port a URL talks to (the unit of per-host limits and backoff)."""
    parts = urlsplit(url)
    return parts.netloc.rsplit("@", 1)[-1].lower()


class Limits:
    """Bounds concurrent requests globally and per host, so one slow server cannot stall others."""

    def __init__(self, total: int, per_host: int) -> None:
        self._total = asyncio.Semaphore(total)
        self._per_host: defaultdict[str, asyncio.Semaphore] = defaultdict(lambda: asyncio.Semaphore(per_host))

    @asynccontextmanager
    async def slot(self, url: str) -> AsyncIterator[None]:
        """Hold one global slot and one slot of the URL's host."""
        async with self._per_host[host_of(url)], self._total:
            yield


def _validators(headers: CIMultiDictProxy[str]) -> Validators:
    return Validators(headers.get("ETag"), headers.get("Last-Modified"))


async def _raise_for_status(response: aiohttp.ClientResponse) -> None:
    if not 200 <= response.status < 300:
        try:
            body = await response.content.read(_ERROR_BODY_BYTES)
        except (aiohttp.ClientError, TimeoutError):
            body = b""
        raise FetchFailure(
            "status",
            f"HTTP {response.status}",
            status=response.status,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
            body=body,
        )


def connection_words(exc: aiohttp.ClientError, host: str) -> str:
    """What went wrong with a connection, in words (never only an exception's class name)."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return f"the TLS certificate of {host} was not accepted"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return f"the host name {host.rsplit(':', 1)[0]} was not found (DNS)"
    if isinstance(exc, aiohttp.ClientSSLError):
        return f"the TLS handshake with {host} failed"
    if isinstance(exc, aiohttp.ClientConnectorError):
        number = exc.os_error.errno
        why = os.strerror(number) if number else exc.os_error.strerror or "refused"
        return f"cannot connect to {host}: {why.lower()}"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return f"{host} closed the connection without answering"
    if isinstance(exc, aiohttp.InvalidURL):
        return "a redirect Location is not a valid URL"
    if isinstance(exc, aiohttp.ClientResponseError):  # the answer's head could not be parsed
        return f"the answer of {host} was not valid HTTP: response headers too large or malformed"
    if isinstance(exc, aiohttp.ClientOSError) and exc.strerror:
        return f"the connection to {host} failed: {exc.strerror.lower()}"
    text = str(exc).strip()
    return f"the connection to {host} failed" + (f": {text}" if text else f" ({type(exc).__name__})")


def _status_class(status: int | None) -> str:
    return "error" if status is None else f"{status // 100}xx"


class HttpClient:
    """Makes the requests of the poll cycle and returns values; decides nothing."""

    def __init__(
        self, session: aiohttp.ClientSession, limits: Limits, metrics: Metrics, tmp_dir: Path
    ) -> None:
        self._session = session
        self._limits = limits
        self._metrics = metrics
        self._tmp_dir = tmp_dir

    @property
    def user_agent(self) -> str:
        """The User-Agent every request carries."""
        return str(self._session.headers.get("User-Agent", ""))

    async def head(
        self,
        source: str,
        url: str,
        headers: Mapping[str, str],
        timeout: float,
        policy: HostPolicy = ANY_HOST,
    ) -> HeadAnswer:
        """HEAD the URL (following redirects the policy allows)."""
        async with self._request(source, "HEAD", url, headers, timeout, policy) as response:
            return HeadAnswer(
                status=response.status,
                validators=_validators(response.headers),
                final_url=str(response.url),
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
                content_length=None if "Content-Encoding" in response.headers else response.content_length,
            )

    async def get(
        self,
        source: str,
        url: str,
        headers: Mapping[str, str],
        timeout: float,
        send: Validators,
        max_bytes: int,
        policy: HostPolicy = ANY_HOST,
    ) -> GetAnswer:
        """GET the URL, conditionally when ``send`` holds validators; stream a 2xx body to disk."""
        request_headers = dict(headers)
        if send.etag is not None:
            request_headers["If-None-Match"] = send.etag
        if send.last_modified is not None:
            request_headers["If-Modified-Since"] = send.last_modified
        async with self._request(source, "GET", url, request_headers, timeout, policy) as response:
            validators = _validators(response.headers)
            headers = dict(response.headers)
            if response.status == 304:
                return GetAnswer(304, validators, None, headers)
            await _raise_for_status(response)
            download = await self._stream(source, response, max_bytes, validators)
            return GetAnswer(response.status, validators, download, headers)

    async def read(
        self,
        source: str,
        url: str,
        headers: Mapping[str, str],
        timeout: float,
        max_bytes: int,
        policy: HostPolicy = ANY_HOST,
    ) -> bytes:
        """GET a small document (an API answer) into memory; at most ``max_bytes``."""
        async with self._request(source, "GET", url, headers, timeout, policy) as response:
            await _raise_for_status(response)
            body = bytearray()
            async for chunk in response.content.iter_chunked(_CHUNK):
                body += chunk
                if len(body) > max_bytes:
                    raise PayloadRejected("oversize", f"body exceeds {max_bytes} bytes")
            return bytes(body)

    @asynccontextmanager
    async def _request(
        self,
        source: str,
        method: str,
        url: str,
        headers: Mapping[str, str],
        timeout: float,
        policy: HostPolicy,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """One request, following redirects by hand so every hop is checked against the policy.

        A hop to another host drops the source's own headers (API keys stay with their host).
        """
        answered = False
        try:
            async with self._limits.slot(url):
                client_timeout = aiohttp.ClientTimeout(total=timeout)
                current, sent = url, dict(headers)
                for _ in range(_MAX_REDIRECTS + 1):
                    answered = False
                    self._check(source, policy, current)
                    async with self._session.request(
                        method, current, headers=sent, timeout=client_timeout, allow_redirects=False
                    ) as response:
                        self._count(source, method, response.status)
                        answered = True
                        location = response.headers.get("Location")
                        if response.status not in _REDIRECTS or location is None:
                            yield response
                            return
                        try:
                            following = str(response.url.join(URL(location)))
                        except ValueError:
                            raise FetchFailure(
                                "redirect", f"the redirect's Location is not a valid URL: {location[:100]!r}"
                            ) from None
                    if host_of(following) != host_of(current):
                        sent = {k: v for k, v in sent.items() if k in _CONDITIONAL}
                    current = following
                raise FetchFailure("redirects", f"more than {_MAX_REDIRECTS} redirects")
        except TimeoutError:
            if not answered:
                self._count(source, method, None)
            raise FetchFailure("timeout", f"no complete answer within {timeout:g}s") from None
        except aiohttp.ClientPayloadError as exc:
            raise PayloadRejected("truncated", str(exc).split(".")[0]) from None
        except aiohttp.ClientError as exc:
            if not answered:
                self._count(source, method, None)
            raise FetchFailure("connection", connection_words(exc, host_of(url))) from None

    def _check(self, source: str, policy: HostPolicy, url: str) -> None:
        reason = policy.refusal(url)
        if reason is not None:
            self._metrics.refused_urls.labels(source, reason).inc()
            host = urlsplit(url).hostname or "?"
            scheme = urlsplit(url).scheme
            what = f"the scheme {scheme}" if reason == "scheme" else f"the host {host}"
            structlog.get_logger("pollerd.fetch").warning(
                f"refused a URL: {what} is not allowed", source=source, host=host, reason=reason
            )
            raise FetchFailure("refused", f"{what} is not allowed")

    def _count(self, source: str, method: str, status: int | None) -> None:
        self._metrics.http_requests.labels(source, method, _status_class(status)).inc()

    async def _stream(
        self,
        source: str,
        response: aiohttp.ClientResponse,
        max_bytes: int,
        validators: Validators,
    ) -> Download:
        encoded = "Content-Encoding" in response.headers
        declared = None if encoded else response.content_length
        if declared is not None and declared > max_bytes:
            raise PayloadRejected("oversize", f"Content-Length {declared} > max_bytes {max_bytes}")
        path = self._tmp_dir / f"{uuid.uuid4().hex}.part"
        digest = hashlib.sha256()
        md5 = hashlib.md5(usedforsecurity=False)  # what S3 and most mirrors send as the ETag
        size = 0
        file = await asyncio.to_thread(path.open, "wb")
        buffer = memoryview(bytearray(_WRITE_BATCH))  # one buffer, reused: memory stays flat
        filled = 0
        try:
            async for chunk in response.content.iter_chunked(_CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise PayloadRejected("oversize", f"body exceeds max_bytes {max_bytes}")
                digest.update(chunk)
                md5.update(chunk)
                if filled + len(chunk) > _WRITE_BATCH:
                    await asyncio.to_thread(file.write, buffer[:filled])
                    filled = 0
                buffer[filled : filled + len(chunk)] = chunk
                filled += len(chunk)
                self._metrics.downloaded_bytes.labels(source).inc(len(chunk))
            if filled:
                await asyncio.to_thread(file.write, buffer[:filled])
            if declared is not None and size != declared:
                raise PayloadRejected("truncated", f"got {size} of {declared} bytes")
        except BaseException:
            await asyncio.to_thread(_close_and_remove, file, path)
            raise
        await asyncio.to_thread(file.close)
        return Download(
            path=path,
            sha256=digest.hexdigest(),
            size=size,
            content_type=response.headers.get("Content-Type"),
            validators=validators,
            final_url=str(response.url),
            md5=md5.hexdigest(),
        )


def _close_and_remove(file: BinaryIO, path: Path) -> None:
    file.close()
    with suppress(FileNotFoundError):
        path.unlink()
