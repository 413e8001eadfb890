"""HTTP I/O: HEAD, conditional GET and streaming download, under global and per-host limits, each
request made on the terms of the source that asks."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import structlog
from yarl import URL

from pollerd.core.backoff import parse_retry_after
from pollerd.core.hosts import ANY_HOST, HostPolicy
from pollerd.core.model import Download, Validators
from pollerd.core.payload import PayloadRejected
from pollerd.polling.answers import (
    FetchFailure,
    GetAnswer,
    HeadAnswer,
    Limits,
    connection_words,
    host_of,
    raise_for_status,
    status_class,
    validators_of,
)
from pollerd.polling.spool import Spool
from pollerd.polling.tally import SourceTally
from pollerd.record.answer_log import AnswerLog, Recordings

NO_VALIDATORS = Validators()

_CHUNK = 64 * 1024
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 5
_CONDITIONAL = ("If-None-Match", "If-Modified-Since")


@dataclass(frozen=True)
class Terms:
    """How one source asks: whose requests they are (counted in its tally), with which headers,
    how long it waits, how many bytes it accepts, and which hosts it may reach."""

    tally: SourceTally
    headers: Mapping[str, str]
    timeout: float
    max_bytes: int
    policy: HostPolicy = ANY_HOST


class HttpClient:
    """Makes the requests of the poll cycle and returns values; decides nothing."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        limits: Limits,
        tmp_dir: Path,
        recordings: Recordings | None = None,
    ) -> None:
        self._session = session
        self._limits = limits
        self._tmp_dir = tmp_dir
        self._recordings = recordings

    @property
    def user_agent(self) -> str:
        """The User-Agent every request carries."""
        return str(self._session.headers.get("User-Agent", ""))

    async def head(self, terms: Terms, url: str) -> HeadAnswer:
        """HEAD the URL (following redirects the policy allows)."""
        async with self._exchange(terms, "HEAD", url, terms.headers) as (response, log):
            if log is not None:
                await log.answer("HEAD", url, response.status, response.headers)
            return HeadAnswer(
                status=response.status,
                validators=validators_of(response.headers),
                final_url=str(response.url),
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
                content_length=None if "Content-Encoding" in response.headers else response.content_length,
            )

    async def get(self, terms: Terms, url: str, send: Validators = NO_VALIDATORS) -> GetAnswer:
        """GET the URL, conditionally when ``send`` holds validators; stream a 2xx body to disk."""
        request_headers = dict(terms.headers)
        if send.etag is not None:
            request_headers["If-None-Match"] = send.etag
        if send.last_modified is not None:
            request_headers["If-Modified-Since"] = send.last_modified
        async with self._exchange(terms, "GET", url, request_headers) as (response, log):
            validators = validators_of(response.headers)
            headers = dict(response.headers)
            if response.status == 304:
                if log is not None:
                    await log.answer("GET", url, 304, headers)
                return GetAnswer(304, validators, None, headers)
            await raise_for_status(response)
            download = await self._stream(terms, response, validators)
            if log is not None and download.path is None:
                await log.answer("GET", url, response.status, headers, body=download.body)
            elif log is not None and download.path is not None:
                kept = (download.path, download.sha256, download.size)
                await log.answer("GET", url, response.status, headers, body_file=kept)
            return GetAnswer(response.status, validators, download, headers)

    async def read(self, terms: Terms, url: str) -> bytes:
        """GET a small document (an API answer) into memory; at most ``max_bytes``."""
        max_bytes = terms.max_bytes
        async with self._exchange(terms, "GET", url, terms.headers) as (response, log):
            await raise_for_status(response)
            body = bytearray()
            async for chunk in response.content.iter_chunked(_CHUNK):
                body += chunk
                if len(body) > max_bytes:
                    raise PayloadRejected("oversize", f"body exceeds {max_bytes} bytes")
            if log is not None:
                await log.answer("GET", url, response.status, response.headers, body=bytes(body))
            return bytes(body)

    @asynccontextmanager
    async def _exchange(
        self, terms: Terms, method: str, url: str, headers: Mapping[str, str]
    ) -> AsyncIterator[tuple[aiohttp.ClientResponse, AnswerLog | None]]:
        """One request under the limits and the source's recorder (None when it is not
        recorded); its failures in words (a request that got no answer is counted), and an
        answer that ends in a failure recorded as the failure it was."""
        log = self._recordings.of(terms.tally.name) if self._recordings is not None else None
        answered = [False]
        try:
            try:
                async with (
                    self._limits.slot(url),
                    self._follow(terms, method, url, headers, answered) as response,
                ):
                    yield response, log
            except TimeoutError:
                if not answered[0]:
                    terms.tally.requested(method, status_class(None))
                raise FetchFailure("timeout", f"no complete answer within {terms.timeout:g}s") from None
            except aiohttp.ClientPayloadError as exc:
                raise PayloadRejected("truncated", str(exc).split(".")[0]) from None
            except aiohttp.ClientError as exc:
                if not answered[0]:
                    terms.tally.requested(method, status_class(None))
                raise FetchFailure("connection", connection_words(exc, host_of(url))) from None
        except FetchFailure as exc:
            if log is not None and exc.reason != "refused":  # refused: no request was made
                if exc.status is None:
                    await log.no_answer(method, url, exc.reason)
                else:
                    await log.answer(method, url, exc.status, exc.headers, body=exc.body)
            raise
        except PayloadRejected as exc:
            if log is not None:
                await log.no_answer(method, url, exc.reason)
            raise

    @asynccontextmanager
    async def _follow(
        self, terms: Terms, method: str, url: str, headers: Mapping[str, str], answered: list[bool]
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """Follow redirects by hand, so every hop is checked against the policy. A hop to another
        host drops the source's own headers (API keys stay with their host)."""
        client_timeout = aiohttp.ClientTimeout(total=terms.timeout)
        current, sent = url, dict(headers)
        for _ in range(_MAX_REDIRECTS + 1):
            answered[0] = False
            _check(terms, current)
            async with self._session.request(
                method, current, headers=sent, timeout=client_timeout, allow_redirects=False
            ) as response:
                terms.tally.requested(method, status_class(response.status))
                answered[0] = True
                location = response.headers.get("Location")
                if response.status not in _REDIRECTS or location is None:
                    yield response
                    return
                following = _join(response, location)
            if host_of(following) != host_of(current):
                sent = {k: v for k, v in sent.items() if k in _CONDITIONAL}
            current = following
        raise FetchFailure("redirects", f"more than {_MAX_REDIRECTS} redirects")

    async def _stream(
        self, terms: Terms, response: aiohttp.ClientResponse, validators: Validators
    ) -> Download:
        max_bytes = terms.max_bytes
        declared = None if "Content-Encoding" in response.headers else response.content_length
        if declared is not None and declared > max_bytes:
            raise PayloadRejected("oversize", f"Content-Length {declared} > max_bytes {max_bytes}")
        async with Spool(self._tmp_dir / f"{uuid.uuid4().hex}.part") as spool:
            async for chunk in response.content.iter_chunked(_CHUNK):
                if spool.size + len(chunk) > max_bytes:
                    raise PayloadRejected("oversize", f"body exceeds max_bytes {max_bytes}")
                await spool.add(chunk)
                terms.tally.downloaded(len(chunk))
            if declared is not None and spool.size != declared:
                raise PayloadRejected("truncated", f"got {spool.size} of {declared} bytes")
        return Download(
            path=None if spool.body is not None else spool.path,
            sha256=spool.sha256,
            size=spool.size,
            content_type=response.headers.get("Content-Type"),
            validators=validators,
            final_url=str(response.url),
            md5=spool.md5,
            body=spool.body,
        )


def _join(response: aiohttp.ClientResponse, location: str) -> str:
    try:
        return str(response.url.join(URL(location)))
    except ValueError:
        raise FetchFailure(
            "redirect", f"the redirect's Location is not a valid URL: {location[:100]!r}"
        ) from None


def _check(terms: Terms, url: str) -> None:
    """Refuse a URL (and say so) where the source may not go."""
    reason = terms.policy.refusal(url)
    if reason is not None:
        terms.tally.refused(reason)
        host = urlsplit(url).hostname or "?"
        scheme = urlsplit(url).scheme
        what = f"the scheme {scheme}" if reason == "scheme" else f"the host {host}"
        structlog.get_logger("pollerd.fetch").warning(
            f"refused a URL: {what} is not allowed", source=terms.tally.name, host=host, reason=reason
        )
        raise FetchFailure("refused", f"{what} is not allowed")
