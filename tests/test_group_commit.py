"""Changes that arrive together are committed together (``GroupCommit``), on both engines: every
change committed once, with its payload, in fewer trips than changes; one bad change costs only
itself; a caller that goes away does not take its change with it. And the bodies behind them: a
small one never touches the disk until it is kept, a large one streams to a file."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pollerd.core.model import Download, Event, ResourceState, Validators
from pollerd.polling.spool import SMALL_BODY, Spool
from pollerd.store.blobs import BlobStore
from pollerd.store.group_commit import GroupCommit
from pollerd.store.postgres.blobs import PgBlobs
from pollerd.store.postgres.store import PgStore
from pollerd.store.protocol import Adopt, Change, StateStore
from pollerd.store.sqlite.store import SqliteStore
from tests.test_store_queries import event


@pytest.fixture(params=["sqlite", "postgres"])
async def stored(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[StateStore, BlobStore]]:
    store: SqliteStore | PgStore
    if request.param == "sqlite":
        store = SqliteStore(tmp_path)
        blobs = BlobStore(tmp_path)
    else:
        store = PgStore(request.getfixturevalue("postgres_url"))
        blobs = PgBlobs(tmp_path, store)
    await store.open()
    blobs.prepare()
    try:
        yield store, blobs
    finally:
        await store.close()


class Trips:
    """Counts the store's trips for groups (wrapping the real store: nothing is faked)."""

    def __init__(self, store: StateStore) -> None:
        self.sizes: list[int] = []
        self._record_changes = store.record_changes
        store.record_changes = self._counted  # type: ignore[method-assign]

    async def _counted(self, changes: list[Change], adopt: Adopt) -> list[Event | Exception]:
        self.sizes.append(len(changes))
        return await self._record_changes(changes, adopt)


def new_version(
    resource: str, body: bytes, on_disk: Path | None = None, sinks: tuple[str, ...] = ("out",)
) -> Change:
    sha = hashlib.sha256(body).hexdigest()
    if on_disk is not None:
        on_disk.write_bytes(body)
    download = Download(
        on_disk,
        sha,
        len(body),
        "application/json",
        Validators('"e"'),
        f"https://example.org/{resource}",
        body=None if on_disk is not None else body,
    )
    state = ResourceState(resource, sequence=1, sha256=sha, size=len(body))
    return Change("src", state, event(resource, 1, sha), list(sinks), download)


async def test_changes_that_arrive_together_are_committed_together(
    stored: tuple[StateStore, BlobStore], tmp_path: Path
) -> None:
    store, blobs = stored
    trips = Trips(store)
    commits = GroupCommit(store, blobs)
    changes = [
        new_version(f"r{n}", f'{{"n": {n}}}'.encode(), tmp_path / f"d{n}" if n % 2 else None)
        for n in range(40)
    ]
    events = await asyncio.gather(*(commits.commit(change) for change in changes))
    assert [e.resource for e in events] == [f"r{n}" for n in range(40)]
    assert sum(trips.sizes) == 40 and len(trips.sizes) < 40, trips.sizes
    for n, committed in enumerate(events):
        kept = await blobs.local(committed.sha256)
        assert kept.read_bytes() == f'{{"n": {n}}}'.encode()
    assert not list(tmp_path.glob("d*")), "downloads on disk are moved into the store"
    assert not list(blobs.tmp_dir.iterdir()), "bodies in memory leave nothing behind"
    states = await store.load_states("src")
    assert {s.sequence for s in states.values()} == {1} and len(states) == 40
    assert [d.event.resource for d in await store.pending_deliveries("out", 100)] == [
        f"r{n}" for n in range(40)
    ]


async def test_one_bad_change_in_a_group_costs_only_itself(
    stored: tuple[StateStore, BlobStore], tmp_path: Path
) -> None:
    store, blobs = stored
    commits = GroupCommit(store, blobs)
    good = [new_version(f"r{n}", f'{{"n": {n}}}'.encode()) for n in range(3)]
    gone = new_version("gone", b'{"gone": 1}', tmp_path / "gone")
    (tmp_path / "gone").unlink()  # its download vanished: it cannot be adopted
    refused = new_version("twice", b'{"twice": 1}', sinks=("out", "out"))  # a delivery twice: refused
    results = await asyncio.gather(
        *(commits.commit(change) for change in [good[0], gone, good[1], refused, good[2]]),
        return_exceptions=True,
    )
    assert isinstance(results[1], FileNotFoundError)
    assert isinstance(results[3], Exception) and not isinstance(results[3], FileNotFoundError)
    assert [r.resource for r in results if isinstance(r, Event)] == ["r0", "r1", "r2"]
    assert sorted(await store.load_states("src")) == ["r0", "r1", "r2"]
    assert [d.event.resource for d in await store.pending_deliveries("out", 100)] == ["r0", "r1", "r2"]


async def test_a_caller_that_goes_away_does_not_take_its_change_with_it(
    stored: tuple[StateStore, BlobStore],
) -> None:
    store, blobs = stored
    commits = GroupCommit(store, blobs)
    async with blobs.lock:  # the group waits here, its caller's patience runs out
        waiting = asyncio.create_task(commits.commit(new_version("r", b'{"r": 1}')))
        await asyncio.sleep(0.05)
        waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    for _ in range(200):
        if await store.load_states("src"):
            break
        await asyncio.sleep(0.02)
    assert list(await store.load_states("src")) == ["r"]
    assert len(await store.pending_deliveries("out", 10)) == 1


async def test_a_small_body_stays_in_memory_and_a_large_one_streams_to_a_file(tmp_path: Path) -> None:
    small, large = b"x" * SMALL_BODY, b"y" * (SMALL_BODY + 1)
    for body in (small, large):
        async with Spool(tmp_path / f"{len(body)}.part") as spool:
            for start in range(0, len(body), 4096):
                await spool.add(body[start : start + 4096])
        assert spool.sha256 == hashlib.sha256(body).hexdigest() and spool.size == len(body)
        if body is small:
            assert spool.body == body and not spool.path.exists()
        else:
            assert spool.body is None and spool.path.read_bytes() == body


async def test_a_spool_that_fails_leaves_no_file(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        async with Spool(tmp_path / "big.part") as spool:
            await spool.add(b"z" * (2 * 1024 * 1024))  # past the first batch: on disk
            assert spool.path.exists()
            raise RuntimeError("the connection broke")
    assert not (tmp_path / "big.part").exists()
