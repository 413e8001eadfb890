"""Payloads kept in PostgreSQL, where every replica finds them; the state directory holds a local
copy of those this replica adopted or needed (a sink is handed a file)."""

from __future__ import annotations

import asyncio
import uuid
from contextlib import suppress
from pathlib import Path

from pollerd.store.blobs import BlobStore, PayloadUsage
from pollerd.store.postgres import queries as pg_queries
from pollerd.store.postgres.store import PgStore
from pollerd.versions.stored import delta_base


class PgBlobs(BlobStore):
    """A BlobStore whose payloads are stored by ``PgStore.record_change`` (in the change's own
    transaction); ``local`` fetches one this replica does not hold, chunk by chunk."""

    def __init__(self, state_dir: Path, store: PgStore) -> None:
        super().__init__(state_dir)
        self._store = store

    async def local(self, sha256: str) -> Path:
        """The local copy, fetched from the database first if this replica has none."""
        path = self.path(sha256)
        if await asyncio.to_thread(path.exists):
            return path
        part = self.tmp_dir / f"{uuid.uuid4().hex}.part"
        if not await self._store.run(pg_queries.load_payload, sha256, part):
            await self.discard(part)
            raise FileNotFoundError(f"payload {sha256} is not stored")
        await asyncio.to_thread(_into_place, part, path)
        return path

    async def has(self, sha256: str) -> bool:
        """Whether the database stores a payload under this hash."""
        return bool(await self._store.run(pg_queries.has_payload, sha256))

    async def _base_of(self, sha256: str) -> str | None:
        try:
            return await asyncio.to_thread(delta_base, await self.local(sha256))
        except FileNotFoundError:
            return None

    async def _remove_unless_used(self, sha256: str, usage: PayloadUsage) -> bool:
        """From the database (unless still needed, checked in the same transaction) and the
        local copy with it."""
        kept_after = self._store.retention.kept_after()
        if not await self._store.run(pg_queries.delete_payload_unless_used, sha256, kept_after):
            return False
        await self.discard(self.path(sha256))
        return True


def _into_place(part: Path, path: Path) -> None:
    path.parent.mkdir(exist_ok=True)
    with suppress(FileExistsError):
        part.replace(path)
