"""A body streamed to a temporary file: hashed on the way (SHA-256, and MD5, what S3 and most
mirrors send as the ETag), written in batches of up to a MiB, so memory stays flat whatever the
size (and a small body allocates no more than itself), and the file removed if anything goes
wrong."""

from __future__ import annotations

import asyncio
import hashlib
from contextlib import suppress
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

_WRITE_BATCH = 1024 * 1024


class Spool:
    """``async with Spool(path) as spool: await spool.add(chunk)``; the file is closed on exit,
    and removed when the block raises."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = 0
        self._sha256 = hashlib.sha256()
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._pending = bytearray()
        self._file: BinaryIO | None = None

    @property
    def sha256(self) -> str:
        """The SHA-256 of what was added."""
        return self._sha256.hexdigest()

    @property
    def md5(self) -> str:
        """The MD5 of what was added."""
        return self._md5.hexdigest()

    async def __aenter__(self) -> Spool:
        self._file = await asyncio.to_thread(self.path.open, "wb")
        return self

    async def add(self, chunk: bytes) -> None:
        """Hash and buffer a chunk (written when the buffer is full)."""
        self.size += len(chunk)
        self._sha256.update(chunk)
        self._md5.update(chunk)
        self._pending += chunk
        if len(self._pending) >= _WRITE_BATCH:
            await self._flush()

    async def _flush(self) -> None:
        assert self._file is not None
        batch, self._pending = self._pending, bytearray()
        await asyncio.to_thread(self._file.write, batch)

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._file is not None
        failed = kind is not None
        try:
            if not failed and self._pending:
                await self._flush()
        except BaseException:
            failed = True
            raise
        finally:
            await asyncio.to_thread(self._file.close)
            if failed:
                with suppress(FileNotFoundError):
                    await asyncio.to_thread(self.path.unlink)
