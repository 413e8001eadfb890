"""Leases and fencing on PostgreSQL: one holder at a time, takeover of an expired lease with the
epoch raised, and every write of a lost lease refused in its own transaction."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from pollerd.core.model import ResourceState
from pollerd.store.postgres import leases as pg_leases
from pollerd.store.postgres.leases import Fenced
from pollerd.store.postgres.store import PgStore
from tests.test_store_contract import PAYLOAD
from tests.test_store_queries import event


@pytest.fixture
async def store(postgres_url: str) -> AsyncIterator[PgStore]:
    opened = PgStore(postgres_url)
    await opened.open()
    yield opened
    await opened.close()


async def test_one_holder_and_a_takeover_raises_the_epoch(store: PgStore) -> None:
    first = await store.run(pg_leases.acquire, "source:a", "one", 0.3)
    assert first is not None and first.epoch == 1
    assert await store.run(pg_leases.acquire, "source:a", "two", 0.3) is None  # held
    assert await store.run(pg_leases.renew, [first], 0.3) == {"source:a"}
    await asyncio.sleep(0.4)  # expired
    second = await store.run(pg_leases.acquire, "source:a", "two", 30)
    assert second is not None and second.epoch == 2
    assert await store.run(pg_leases.renew, [first], 30) == set()  # lost: taken over
    [row] = await store.run(pg_leases.leases)
    assert (row.holder, row.epoch) == ("two", 2) and 29 < row.expires_in <= 30


async def test_an_expired_lease_nobody_took_is_renewed_by_its_holder(store: PgStore) -> None:
    fence = await store.run(pg_leases.acquire, "sink:out", "one", 0.1)
    assert fence is not None
    await asyncio.sleep(0.2)
    assert await store.run(pg_leases.renew, [fence], 30) == {"sink:out"}


async def test_writes_of_a_lost_lease_are_refused(store: PgStore) -> None:
    """A replica frozen past its lease: its state write and its change are refused, and nothing
    of either is committed; the new holder's writes go through."""
    old = await store.run(pg_leases.acquire, "source:src", "frozen", 0.2)
    assert old is not None
    stale = store.with_fence(old)
    await stale.save_states("src", [ResourceState("r", failures=1)])
    await asyncio.sleep(0.3)
    with pytest.raises(Fenced, match="no longer held by frozen"):
        await stale.save_states("src", [ResourceState("r", failures=2)])  # expired: refused
    new = await store.run(pg_leases.acquire, "source:src", "standby", 30)
    assert new is not None
    PAYLOAD.write_bytes(b"{}")
    with pytest.raises(Fenced):
        await stale.record_change("src", ResourceState("r", sequence=1), event("r", 1), ["out"], PAYLOAD)
    assert await store.outbox_depth("out") == 0
    assert (await store.load_states("src"))["r"].failures == 1
    await store.with_fence(new).record_change(
        "src", ResourceState("r", sequence=1), event("r", 1), ["out"], PAYLOAD
    )
    assert await store.outbox_depth("out") == 1


async def test_replicas_count_while_they_beat(store: PgStore) -> None:
    assert await store.run(pg_leases.heartbeat, "one", 30) == 1
    assert await store.run(pg_leases.heartbeat, "two", 0.1) == 2
    await asyncio.sleep(0.2)
    assert await store.run(pg_leases.heartbeat, "one", 30) == 1  # two stopped beating
    await store.run(pg_leases.leave, "one")
    assert await store.run(pg_leases.heartbeat, "three", 30) == 1
