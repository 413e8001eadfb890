"""What a request to an upstream can come back with: answers, failures in words, and the limits
every request is made under."""

from __future__ import annotations

import asyncio
import functools
import os
from collections import defaultdict
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
from multidict import CIMultiDictProxy

from pollerd.core.backoff import parse_retry_after
from pollerd.core.model import Download, Validators

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
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.status = status
        self.retry_after = retry_after
        self.body = body  # the start of an error answer's body (APIs explain themselves there)
        self.headers = headers or {}  # an error answer's headers

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


@functools.lru_cache(maxsize=65_536)  # every request asks; urlsplit's own cache holds 128 URLs
def host_of(url: str) -> str:
    """The host:port a URL talks to (the unit of per-host limits and backoff)."""
    parts = urlsplit(url)
    return parts.netloc.rsplit("@", 1)[-1].lower()


class Limits:
    """Bounds concurrent requests globally and per host, so one slow server cannot stall others."""

    def __init__(self, total: int, per_host: int) -> None:
        self._total = asyncio.Semaphore(total)
        self._per_host: defaultdict[str, asyncio.Semaphore] = defaultdict(lambda: asyncio.Semaphore(per_host))

    def slot(self, url: str) -> _Slot:
        """``async with``: hold one slot of the URL's host and one global slot."""
        return _Slot(self._per_host[host_of(url)], self._total)


class _Slot:
    """Two semaphores held together, taken in order and given back in reverse (a plain class:
    this is entered at every request)."""

    def __init__(self, host: asyncio.Semaphore, total: asyncio.Semaphore) -> None:
        self._host = host
        self._total = total

    async def __aenter__(self) -> None:
        await self._host.acquire()
        try:
            await self._total.acquire()
        except BaseException:
            self._host.release()
            raise

    async def __aexit__(self, *exc: object) -> None:
        self._total.release()
        self._host.release()


def validators_of(headers: CIMultiDictProxy[str]) -> Validators:
    return Validators(headers.get("ETag"), headers.get("Last-Modified"))


async def raise_for_status(response: aiohttp.ClientResponse) -> None:
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
            headers=dict(response.headers),
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


def status_class(status: int | None) -> str:
    return "error" if status is None else f"{status // 100}xx"
