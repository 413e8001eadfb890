"""A body as it streams in: hashed on the way (SHA-256, and MD5, what S3 and most mirrors send as
the ETag) and written to a temporary file in batches of up to a MiB, so memory stays flat
whatever the size, and the file removed if anything goes wrong. A small body never touches the
disk here: it is kept in memory (``body``), and written once, where it is kept, if it is a new
version (most probes of a night end in an unchanged answer or a small file)."""

from __future__ import annotations

import asyncio
import hashlib
from contextlib import suppress
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

_WRITE_BATCH = 1024 * 1024
SMALL_BODY = 64 * 1024  # held in memory, and parsed on the event loop in well under a ms


class Spool:
    """``async with Spool(path) as spool: await spool.add(chunk)``. After the block, either
    ``body`` holds a small body, or ``path`` the whole body (written and closed); the file is
    removed when the block raises."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = 0
        self.body: bytes | None = None
        self._sha256 = hashlib.sha256()
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._pending = bytearray()
        self._file: BinaryIO | None = None  # opened once the body outgrows the memory kept

    @property
    def sha256(self) -> str:
        """The SHA-256 of what was added."""
        return self._sha256.hexdigest()

    @property
    def md5(self) -> str:
        """The MD5 of what was added."""
        return self._md5.hexdigest()

    async def __aenter__(self) -> Spool:
        return self

    async def add(self, chunk: bytes) -> None:
        """Hash and buffer a chunk (written when the buffer is full)."""
        self.size += len(chunk)
        self._sha256.update(chunk)
        self._md5.update(chunk)
        self._pending += chunk
        if len(self._pending) >= _WRITE_BATCH:
            batch, self._pending = self._pending, bytearray()
            await asyncio.to_thread(self._write, batch, False)

    def _write(self, batch: bytearray, last: bool) -> None:
        if self._file is None:
            self._file = self.path.open("wb")
        self._file.write(batch)
        if last:
            self._file.close()

    def _finish(self, batch: bytearray) -> None:
        try:
            self._write(batch, True)
        except BaseException:
            self._abandon()
            raise

    def _abandon(self) -> None:
        if self._file is not None:
            self._file.close()
            with suppress(FileNotFoundError):
                self.path.unlink()

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if kind is not None:
            if self._file is not None:
                await asyncio.to_thread(self._abandon)
            return
        batch, self._pending = self._pending, bytearray()
        if self._file is None and self.size <= SMALL_BODY:
            self.body = bytes(batch)
        else:
            await asyncio.to_thread(self._finish, batch)
