"""A version as a sink takes it: its bytes as a file, its reading, or only its change. A sink asks
for what it needs, and pays for no more: an AP version kept as a delta is written out whole
only for a sink that asks for the file."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

from pollerd.versions.snapshot import SnapshotReading
from pollerd.versions.stored import VersionReader, checkpoint_bytes, is_delta, read_whole


class Payload:
    """The payload of one version (a plain file: ``Payload(path)``; a stored version:
    ``Payload.stored``). ``close`` removes what it wrote out."""

    def __init__(self, path: Path | None, reading: Any = None) -> None:
        self._path = path
        self._reading = reading
        self._written: Path | None = None
        self._stored: tuple[VersionReader, str, Path] | None = None

    @classmethod
    def stored(cls, reader: VersionReader, sha256: str, scratch: Path) -> Payload:
        """A stored version (its payload file fetched only when a sink asks for it; a delta is
        written out whole into ``scratch``)."""
        payload = cls(None)
        payload._stored = (reader, sha256, scratch)
        return payload

    async def path(self) -> Path:
        """A file holding the whole document, byte for byte as the version reads."""
        if self._stored is None:
            assert self._path is not None
            return self._path
        if self._path is None:
            self._path = await self._stored[0].fetch(self._stored[1])
        if self._written is None:
            if not await asyncio.to_thread(is_delta, self._path):
                return self._path
            reading = await self.reading()
            assert isinstance(reading, SnapshotReading)
            target = self._stored[2] / f"{uuid.uuid4().hex}.whole"
            body = await asyncio.to_thread(checkpoint_bytes, reading)
            await asyncio.to_thread(target.write_bytes, body)
            self._written = target
        return self._written

    async def reading(self) -> Any:
        """The whole version, parsed (an AP snapshot as a SnapshotReading); None if it is no JSON."""
        if self._reading is None:
            if self._stored is not None:
                reader, sha256, _ = self._stored
                self._reading = await reader.read(sha256)
            else:
                self._reading = await asyncio.to_thread(read_whole, await asyncio.to_thread(self._read))
        return self._reading

    async def document(self) -> Any:
        """The whole version as plain JSON values (an AP snapshot as its document)."""
        reading = await self.reading()
        return reading.document() if isinstance(reading, SnapshotReading) else reading

    async def change(self) -> Any:
        """What the version changed: an AP snapshot's changed races (as an AP delta); for any
        other payload the whole document."""
        reading = await self.reading()
        return reading.change() if isinstance(reading, SnapshotReading) else reading

    def _read(self) -> bytes:
        assert self._path is not None
        return self._path.read_bytes()

    async def close(self) -> None:
        """Remove the whole document written out for this delivery, if one was."""
        if self._written is not None:
            await asyncio.to_thread(self._written.unlink, True)
            self._written = None
