"""Content-addressed payload files in the state directory, kept while a sink still needs them
(the payloads themselves with SQLite; a local copy of the database's with PostgreSQL)."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from contextlib import suppress
from pathlib import Path
from typing import Protocol

from pollerd.core.model import Download
from pollerd.store.durable import fsync_dir
from pollerd.versions.stored import DELTA_MARK, delta_base, is_delta


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

    async def adopt(self, download: Download) -> Path:
        """Put a download into the store, durably; return its blob path."""
        (adopted,) = await asyncio.to_thread(self.adopt_all, [download])
        if isinstance(adopted, Exception):
            raise adopted
        return adopted

    async def has(self, sha256: str) -> bool:
        """Whether a payload is stored under this hash."""
        return await asyncio.to_thread(self.path(sha256).exists)

    def adopt_all(self, downloads: list[Download]) -> list[Path | Exception]:
        """Put downloads into the store, durably, each folder made durable once (in a worker
        thread): the blob path of each, or what kept it out (the others go on)."""
        adopted: list[Path | Exception] = []
        folders: dict[Path, list[int]] = {}
        for download in downloads:
            try:
                target, placed = self._place(download)
            except OSError as exc:
                adopted.append(exc)
                continue
            if placed:
                folders.setdefault(target.parent, []).append(len(adopted))
            adopted.append(target)
        for folder, which in folders.items():
            try:
                fsync_dir(folder)
            except OSError as exc:
                for index in which:
                    adopted[index] = exc
        return adopted

    def _place(self, download: Download) -> tuple[Path, bool]:
        """The blob path, and whether the download was put there (its folder to be made durable)
        rather than dropped for a copy already there. A body in memory is written to a temporary
        file and renamed into place, so a blob is never seen half-written."""
        target = self.path(download.sha256)
        # a version that comes back whole where it was kept as a delta replaces the delta
        if target.exists() and not (is_delta(target) and not _is_delta(download)):
            self._drop_now(download)
            return target, False
        target.parent.mkdir(exist_ok=True)
        source = download.path
        if source is None:
            source = self.tmp_dir / f"{uuid.uuid4().hex}.part"  # (a crash leaves it where a start clears)
            with source.open("wb") as file:
                file.write(download.read_bytes())
                os.fsync(file.fileno())
        else:
            with source.open("rb") as file:
                os.fsync(file.fileno())
        source.replace(target)
        return target, True

    async def drop(self, download: Download) -> None:
        """Let go of a download that will not be kept (its file, if it has one)."""
        if download.path is not None:
            await self.discard(download.path)

    @staticmethod
    def _drop_now(download: Download) -> None:
        if download.path is not None:
            _unlink(download.path)

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


def _is_delta(download: Download) -> bool:
    if download.path is None:
        return download.read_bytes().startswith(DELTA_MARK)
    return is_delta(download.path)


def _unlink(path: Path) -> None:
    with suppress(FileNotFoundError):
        path.unlink()
