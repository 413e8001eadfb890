"""Recording what upstreams answered: ``[daemon] record`` or a source's ``record = true``.

The HTTP client hands every answer of a recorded source here (HEAD, GET, 304, errors, requests
that got no answer) with the body it carried. Secrets never reach the archive: a query parameter
holding one is dropped from the URL, ``Set-Cookie`` is left out, and every other header value is
masked like a log line. A body that echoes a configured secret (AP's "Invalid request for key …",
an error repeating a token) is kept with the secret masked: that body is then not byte-exact.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import SecretStr

from pollerd.config.base import SourceBase
from pollerd.core.masking import MASKED, Masker
from pollerd.record.archive import Answer, ArchiveWriter, SourceInfo

_LEFT_OUT = frozenset({"set-cookie", "set-cookie2", "authorization", "proxy-authorization"})
_HIDDEN = str(SecretStr("hidden"))  # how a secret reads in a dumped model
Mask = Callable[[str], str]
MaskBytes = Callable[[bytes], bytes]
BodyFile = tuple[Path, str, int]  # a body on disk: its path, SHA-256 and size


def public_url(url: str, mask: Mask) -> str:
    """The URL without any query parameter that holds a secret, the rest masked."""
    parts = urlsplit(url)
    if not parts.query:
        return mask(url)
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if mask(v) == v]
    return mask(urlunsplit(parts._replace(query=urlencode(kept, safe=",:/"))))


def public_headers(headers: Mapping[str, str], mask: Mask) -> dict[str, str]:
    """Response headers as served, minus cookies and credentials, secrets masked."""
    return {k: mask(v) for k, v in headers.items() if k.lower() not in _LEFT_OUT}


def public_config(source: SourceBase) -> dict[str, Any]:
    """The source's config as written, without its secrets (to replay it, and to say what it was)."""
    table: dict[str, Any] = _without_secrets(
        source.model_dump(mode="json", by_alias=True, exclude_unset=True)
    )
    table.pop("headers", None)
    table.pop("header_files", None)
    return table


def _without_secrets(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_secrets(v) for k, v in value.items() if v != _HIDDEN}
    if isinstance(value, list):
        return [_without_secrets(v) for v in value]
    return value


class AnswerLog:
    """One source's recorder: answers go to its archive folder, written in a worker thread, one
    at a time (the index's lines keep the order the answers arrived in)."""

    def __init__(
        self, folder: Path, info: SourceInfo, clock: Callable[[], float], mask: Mask, mask_body: MaskBytes
    ) -> None:
        self._folder = folder
        self.info = info
        self._clock = clock
        self._mask = mask
        self._mask_body = mask_body
        self._writer: ArchiveWriter | None = None
        self._lock = asyncio.Lock()

    async def answer(
        self,
        method: str,
        url: str,
        status: int,
        headers: Mapping[str, str],
        body: bytes | None = None,
        body_file: BodyFile | None = None,
    ) -> None:
        """An answer that came: its status and headers, and its body (in memory, or a file with
        its SHA-256 and size)."""
        size = len(body) if body is not None else (body_file[2] if body_file else 0)
        answer = Answer(
            self._clock(),
            method,
            public_url(url, self._mask),
            status,
            public_headers(headers, self._mask),
            None,
            size,
        )
        await self._write(answer, body, body_file)

    async def no_answer(self, method: str, url: str, reason: str) -> None:
        """A request that got no usable answer (timeout, connection, a truncated body)."""
        await self._write(
            Answer(self._clock(), method, public_url(url, self._mask), None, error=reason), None, None
        )

    async def _write(self, answer: Answer, body: bytes | None, body_file: BodyFile | None) -> None:
        async with self._lock:
            await asyncio.to_thread(self._write_now, answer, body, body_file)

    def _write_now(self, answer: Answer, body: bytes | None, body_file: BodyFile | None) -> None:
        if self._writer is None:
            self._writer = ArchiveWriter(self._folder, self.info)
        digest = None
        if body_file is not None:
            kept = body_file[0].read_bytes()
            body = masked if (masked := self._mask_body(kept)) != kept else None
            if body is None:
                self._writer.keep_file(body_file[0], body_file[1])
                digest = body_file[1]
        if body is not None:
            digest = self._writer.keep_bytes(self._mask_body(body))
        self._writer.append(Answer(**{**answer.__dict__, "body": digest}))

    async def close(self) -> None:
        """Sync and close the index."""
        async with self._lock:
            if self._writer is not None:
                await asyncio.to_thread(self._writer.close)
                self._writer = None


class Recordings:
    """The daemon's recorders, one per recorded source, by source name. ``clock`` stamps the
    answers (wall time; a test may give the night's own)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._logs: dict[str, AnswerLog] = {}
        self._own = Masker()  # the recorded sources' secrets, whatever the process masks

    def _mask(self, text: str) -> str:
        return self._own(MASKED(text))

    def _mask_body(self, data: bytes) -> bytes:
        return self._own.bytes(MASKED.bytes(data))

    async def configure(self, root: Path | None, state_dir: Path, sources: Sequence[SourceBase]) -> None:
        """Record the sources that ask for it: every source when ``root`` is set (unless it says
        ``record = false``), else those with ``record = true`` (under ``<state_dir>/recording``)."""
        folder = root or state_dir / "recording"
        self._own.use(secret for source in sources for secret in source.secret_values())
        wanted = {s.name: s for s in sources if s.record or (s.record is None and root is not None)}
        for name in list(self._logs):
            if name not in wanted:
                await self._logs.pop(name).close()
        for name, source in wanted.items():
            info = SourceInfo(name, source.kind, public_config(source))
            if name not in self._logs or self._logs[name].info != info:
                if name in self._logs:
                    await self._logs[name].close()  # the next answer opens it again, as configured now
                self._logs[name] = AnswerLog(
                    folder / name, info, lambda: self.clock(), self._mask, self._mask_body
                )

    def of(self, source: str) -> AnswerLog | None:
        """The source's recorder, if it is recorded."""
        return self._logs.get(source)

    async def close(self) -> None:
        """Close every recorder."""
        for log in self._logs.values():
            await log.close()
