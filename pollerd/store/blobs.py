"""Content-addressed payload files in the state directory, kept while a sink still needs them
(the payloads themselves with SQLite; a local copy of the database's with PostgreSQL)."""

from __future__ import annotations

import asyncio
import os
import shutil
from contextlib import suppress
from pathlib import Path
from typing import Protocol

from pollerd.store.durable import fsync_dir
from pollerd.versions.stored import delta_base, is_delta


class PayloadUsage(Protocol):
    """What knows whether a payload is still needed (the state store)."""

    async def blob_in_use(self, sha256: str) -> bool: ...


class BlobStore:
    """``<state_dir>/blobs/<sha[:2]>/<sha>`` for payloads, ``<state_dir>/tmp`` for downloads.

    ``lock`` is held while a payload is adopted and recorded, and while one is released, so a
    payload that comes back (A, B, A) is never removed between its adoption and its record.
    """

    def __init__(self, state_dir: Path) -> None:
        self.blob_dir = state_dir / "blobs"
        self.tmp_dir = state_dir / "tmp"
        self.lock = asyncio.Lock()

    def prepare(self) -> None:
        """Create the folders and drop partial downloads left by a previous process."""
        shutil.rmtree(self.tmp_dir, ignore_errors=True)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self.blob_dir.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        """Where the payload with this hash lives."""
        return self.blob_dir / sha256[:2] / sha256

    async def local(self, sha256: str) -> Path:
        """A local file holding the payload (a sink is handed this path)."""
        return self.path(sha256)

    async def adopt(self, download_path: Path, sha256: str) -> Path:
        """Move a finished download into the store, durably; return its blob path."""
        return await asyncio.to_thread(self._adopt, download_path, sha256)

    async def has(self, sha256: str) -> bool:
        """Whether a payload is stored under this hash."""
        return await asyncio.to_thread(self.path(sha256).exists)

    def _adopt(self, download_path: Path, sha256: str) -> Path:
        target = self.path(sha256)
        # a version that comes back whole where it was kept as a delta replaces the delta
        if target.exists() and not (is_delta(target) and not is_delta(download_path)):
            download_path.unlink()
            return target
        target.parent.mkdir(exist_ok=True)
        with download_path.open("rb") as file:
            os.fsync(file.fileno())
        download_path.replace(target)
        fsync_dir(target.parent)
        return target

    async def discard(self, path: Path) -> None:
        """Remove a download that will not be kept."""
        await asyncio.to_thread(_unlink, path)

    async def release(self, sha256: str, usage: PayloadUsage) -> None:
        """Remove a payload unless a pending delivery or a current version still needs it; a
        delta's base goes the same way after it, so a chain no longer needed is let go link by
        link (the first link still needed stops it)."""
        current: str | None = sha256
        while current is not None:
            async with self.lock:
                base = await self._base_of(current)
                if not await self._remove_unless_used(current, usage):
                    return
            current = base

    async def _base_of(self, sha256: str) -> str | None:
        return await asyncio.to_thread(delta_base, self.path(sha256))

    async def _remove_unless_used(self, sha256: str, usage: PayloadUsage) -> bool:
        if await usage.blob_in_use(sha256):
            return False
        await asyncio.to_thread(_unlink, self.path(sha256))
        return True


def _unlink(path: Path) -> None:
    with suppress(FileNotFoundError):
        path.unlink()
