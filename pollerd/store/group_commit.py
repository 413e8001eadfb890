"""Changes committed in groups: those that come while one group is being committed wait for the
next, and go together, with one trip to the store. A cycle where hundreds of files changed costs
a few commits, not hundreds; a lone change is committed at once."""

from __future__ import annotations

import asyncio

from pollerd.core.model import Event
from pollerd.store.blobs import BlobStore
from pollerd.store.protocol import Change, StateStore


class GroupCommit:
    """Commits ``Change``s of one source for whoever awaits them. The blob store's lock is held
    over each group, so no release removes a payload between its adoption and its record."""

    def __init__(self, store: StateStore, blobs: BlobStore) -> None:
        self._store = store
        self._blobs = blobs
        self._waiting: list[tuple[Change, asyncio.Future[Event]]] = []
        self._committing: asyncio.Task[None] | None = None

    async def commit(self, change: Change) -> Event:
        """The change's event as committed. A caller cancelled meanwhile does not stop the
        commit (it is in the group already); the change is committed or not, whole."""
        done: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        done.add_done_callback(_seen)
        self._waiting.append((change, done))
        if self._committing is None:
            self._committing = asyncio.create_task(self._commit_groups())
        return await asyncio.shield(done)

    async def _commit_groups(self) -> None:
        group: list[tuple[Change, asyncio.Future[Event]]] = []
        try:
            while self._waiting:
                group, self._waiting = self._waiting, []
                try:
                    async with self._blobs.lock:
                        results = await self._store.record_changes(
                            [change for change, _ in group], self._blobs.adopt_all
                        )
                except Exception as exc:  # the store failed them all (closed, unreachable)
                    results = [exc] * len(group)
                for (_, done), result in zip(group, results, strict=True):
                    if isinstance(result, Exception):
                        done.set_exception(result)
                    else:
                        done.set_result(result)
        finally:  # cancelled (the daemon stops): whoever still waits is told so
            self._committing = None
            for _, done in [*group, *self._waiting]:
                if not done.done():
                    done.cancel()
            self._waiting = []


def _seen(done: asyncio.Future[Event]) -> None:
    """A caller that went away leaves no 'exception never retrieved' behind."""
    if not done.cancelled():
        done.exception()
