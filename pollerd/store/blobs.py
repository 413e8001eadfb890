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

    def _adopt(self, download_path: Path, sha256: str) -> Path:
        target = self.path(sha256)
        if target.exists():
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
        """Remove a payload unless a pending delivery or a current version still needs it."""
        async with self.lock:
            if not await usage.blob_in_use(sha256):
                await asyncio.to_thread(_unlink, self.path(sha256))


def _unlink(path: Path) -> None:
    with suppress(FileNotFoundError):
        path.unlink()
