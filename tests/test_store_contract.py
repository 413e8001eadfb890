"""The StateStore contract, the same on both engines: SQLite (the embedded default) and
PostgreSQL (shared by replicas, on a throwaway cluster the tests start)."""

from __future__ import annotations

import dataclasses
import hashlib
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pollerd.core.election import Fact
from pollerd.core.masking import MASK, MASKED
from pollerd.core.model import Download, Event, Resource, ResourceState, Validators
from pollerd.store.postgres import queries as pg_queries
from pollerd.store.postgres.blobs import PgBlobs
from pollerd.store.postgres.schema import SCHEMA_VERSION, SchemaTooNew
from pollerd.store.postgres.store import PgStore
from pollerd.store.protocol import StateStore
from pollerd.store.sqlite.store import SqliteStore
from tests.test_store_queries import event


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StateStore]:
    if request.param == "sqlite":
        opened: SqliteStore | PgStore = SqliteStore(tmp_path)
    else:
        opened = PgStore(request.getfixturevalue("postgres_url"))
    await opened.open()
    try:
        assert opened.created
        yield opened
    finally:
        await opened.close()


PAYLOAD = Path(tempfile.gettempdir()) / "pollerd-contract-payload.json"


async def change(store: StateStore, resource: str, sequence: int, sinks: list[str], sha: str = "a") -> Event:
    PAYLOAD.write_bytes(f'{{"version": "{sha}"}}'.encode())
    state = ResourceState(resource, sequence=sequence, sha256=sha * 64)
    return await store.record_change("src", state, event(resource, sequence, sha * 64), sinks, PAYLOAD)


async def test_states_round_trip_masked(store: StateStore) -> None:
    MASKED.use(["s3cr3t-key-value"])
    try:
        failing = ResourceState("r", url="u", validators=Validators('"x"', "Mon"), failures=2)
        failing.last_error = "HTTP 401 for s3cr3t-key-value"
        await store.save_states("src", [failing, ResourceState("q", cursor="https://next")])
        loaded = await store.load_states("src")
    finally:
        MASKED.use([])
    assert list(loaded) == ["q", "r"]
    assert loaded["r"].validators == Validators('"x"', "Mon") and loaded["r"].failures == 2
    assert loaded["r"].last_error == f"HTTP 401 for {MASK}"
    assert loaded["q"].cursor == "https://next"


async def test_a_change_commits_state_event_and_deliveries(store: StateStore) -> None:
    committed = await change(store, "r", 1, ["a", "b"])
    assert (await store.load_states("src"))["r"].sequence == 1
    assert [p.event for p in await store.pending_deliveries("a", 10)] == [committed]
    assert await store.outbox_depth("b") == 1
    assert await store.outbox_bytes("a") == 10


async def test_the_sequence_is_allocated_past_the_outbox(store: StateStore) -> None:
    await change(store, "r", 1, ["a"])
    await change(store, "r", 2, ["a"], sha="b")
    await store.save_states("src", [ResourceState("r", sequence=0)])  # a state behind its events
    repaired = await change(store, "r", 1, ["a"], sha="c")
    assert repaired.sequence == 3
    assert repaired.event_id == Event.make_id("src", "r", 3, "c" * 64)


async def test_one_event_per_sequence(store: StateStore) -> None:
    """The same change twice (two writers): the second commits nothing under the same id."""
    await change(store, "r", 1, ["a"])
    second = await change(store, "r", 1, ["a"])
    assert second.sequence == 2  # allocated past the first, never the same sequence again
    assert [p.event.sequence for p in await store.pending_deliveries("a", 10)] == [1, 2]


async def test_settling_deliveries(store: StateStore) -> None:
    one, two = await change(store, "r", 1, ["a"]), await change(store, "r", 2, ["a"], sha="b")
    await store.mark_retry(one.event_id, "a", "HTTP 500", 1e12)
    [retry, _] = await store.pending_deliveries("a", 10)
    assert (retry.attempts, retry.next_attempt) == (1, 1e12)
    await store.mark_dead(one.event_id, "a", "HTTP 410")
    await store.mark_superseded([two.event_id], "a")
    assert await store.delivery_counts("a") == {
        "pending": 0,
        "delivered": 0,
        "filtered": 0,
        "dead": 1,
        "superseded": 1,
    }
    three = await change(store, "r", 3, ["a"], sha="c")
    await store.mark_delivered([three.event_id, one.event_id], "a")  # only pending ones settle
    assert await store.delivery_counts("a") == {
        "pending": 0,
        "delivered": 1,
        "filtered": 0,
        "dead": 1,
        "superseded": 1,
    }


def call(state: str, race: str = "PA:1:G") -> Fact:
    """A race call (``state`` "": retracted)."""
    kind = "race_called" if state else "call_retracted"
    return Fact(kind, race, f"call:{race}", state, None, {"candidate": state}, scope={"state": "PA"})


async def told(store: StateStore, resource: str, sequence: int, *facts: Fact) -> Event:
    """Commit a version of ``resource`` that tells ``facts``."""
    PAYLOAD.write_bytes(b"{}")
    sha = hashlib.sha256(f"{resource}{sequence}".encode()).hexdigest()
    version = dataclasses.replace(event(resource, sequence, sha), election=facts)
    return await store.record_change(
        "src", ResourceState(resource, sequence=sequence, sha256=sha), version, ["a"], PAYLOAD
    )


async def test_election_events_are_committed_with_their_version_once_per_story(store: StateStore) -> None:
    """A call is stored with the version that told it; the same call told again (by another
    query of the source, or after a restart) is left out of the version as committed; a flip back
    and forth is told flip by flip; the newest come first."""
    first = await told(store, "senate", 1, call("X:1"), call("X:7", race="PA:2:G"))
    assert [f.state for f in first.election] == ["X:1", "X:7"]
    again = await told(store, "pennsylvania", 1, call("X:1"))
    assert again.election == ()
    assert [p.event.election for p in await store.pending_deliveries("a", 10)][1] == ()
    flips = [await told(store, "senate", n, call(state)) for n, state in ((2, ""), (3, "X:1"))]
    assert [len(version.election) for version in flips] == [1, 1]
    latest = await store.latest_election_events(10, "src")
    assert [(e["type"], e["key"], e["resource"]) for e in latest] == [
        ("race_called", "PA:1:G", "senate"),
        ("call_retracted", "PA:1:G", "senate"),
        ("race_called", "PA:2:G", "senate"),
        ("race_called", "PA:1:G", "senate"),
    ]
    assert latest[0]["event_id"] == flips[1].election[0].event_id(flips[1].event_id)
    assert latest[0]["version_event_id"] == flips[1].event_id
    assert len(await store.latest_election_events(2, "src")) == 2
    assert await store.latest_election_events(10, "another source") == []
    batch = Fact("votes_counted", "PA:1:G", "votes:PA:1:G", "a=5", None, {"votes_added": 5})
    await told(store, "senate", 4, batch)
    assert [e["type"] for e in await store.latest_election_events(10, "src", numbers=True)] == [
        "votes_counted"
    ]
    assert (await store.latest_election_events(1, "src"))[0]["type"] == "race_called"  # stories only


async def test_payloads_in_use(store: StateStore) -> None:
    one = await change(store, "r", 1, ["a"], sha="1")
    await change(store, "r", 2, ["a"], sha="2")
    assert await store.blob_in_use("1" * 64)  # pending
    await store.mark_dead(one.event_id, "a", "x")
    assert await store.blob_in_use("1" * 64)  # dead: it may be redelivered
    assert await store.blob_in_use("2" * 64)  # the current version
    assert not await store.blob_in_use("f" * 64)


async def test_discoveries_and_stops(store: StateStore) -> None:
    assert await store.load_discovery("src") is None
    found = [Resource("x", "https://h/x.json", "json", key="k1"), Resource("y", "https://h/y.csv")]
    await store.save_discovery("src", found)
    await store.save_discovery("src", found[:1])
    assert await store.load_discovery("src") == found[:1]
    await store.note_source("src", "stopped", "the key was refused")
    await store.note_source("src", "stopped", None)


async def test_postgres_cli_reads(postgres_url: str) -> None:
    """The reports' and redelivery's queries on PostgreSQL."""
    store = PgStore(postgres_url)
    await store.open()
    try:
        one = await change(store, "r", 1, ["a"])
        await store.mark_dead(one.event_id, "a", "gone")
        [dead] = await store.run(pg_queries.list_deliveries, "a", ("dead",), 10)
        assert (dead.event_id, dead.last_error, dead.attempts) == (one.event_id, "gone", 1)
        assert await store.run(pg_queries.event_sha256, one.event_id) == "a" * 64
        assert await store.run(pg_queries.redeliver, None, "a") == 1
        assert await store.outbox_depth("a") == 1
        await store.note_source("src", "stopped", "refused")
        assert await store.run(pg_queries.source_note, "src", "stopped") == "refused"
    finally:
        await store.close()


async def test_postgres_migrates_once_and_refuses_a_newer_schema(postgres_url: str) -> None:
    first, second = PgStore(postgres_url), PgStore(postgres_url)
    await first.open()
    await second.open()
    try:
        assert first.created and not second.created
        await first.run(_set_version, SCHEMA_VERSION + 1)
        with pytest.raises(SchemaTooNew):
            await PgStore(postgres_url).open()
    finally:
        await first.close()
        await second.close()


async def _set_version(db: pg_queries.Connection, version: int) -> None:
    await db.execute("UPDATE pollerd.meta SET value = %s WHERE key = 'schema_version'", (str(version),))


async def test_postgres_payloads_are_shared_and_streamed(postgres_url: str, tmp_path: Path) -> None:
    """A payload recorded by one replica is fetched by another, chunk by chunk, byte for byte;
    released once nothing needs it."""
    body = bytes(range(256)) * (14 * 1024)  # 3.5 MiB: four chunks
    sha = hashlib.sha256(body).hexdigest()
    store = PgStore(postgres_url)
    await store.open()
    try:
        writer, reader = PgBlobs(tmp_path / "one", store), PgBlobs(tmp_path / "two", store)
        for blobs in (writer, reader):
            blobs.prepare()
        download = writer.tmp_dir / "download.part"
        download.write_bytes(body)
        payload = await writer.adopt(Download(download, sha, len(body), None, Validators(), "http://x/r"))
        committed = await store.record_change(
            "src", ResourceState("r", sequence=1), event("r", 1, sha), ["a"], payload
        )
        assert await store.run(_parts, sha) == 4
        fetched = await reader.local(sha)
        assert fetched != payload and fetched.read_bytes() == body
        await reader.release(sha, store)  # still the resource's current version: kept
        assert await store.run(pg_queries.has_payload, sha)
        await store.save_states("src", [ResourceState("r", sequence=1, sha256="f" * 64)])
        await store.mark_delivered([committed.event_id], "a")
        await reader.release(sha, store)
        assert not await store.run(pg_queries.has_payload, sha)
        assert not fetched.exists()
    finally:
        await store.close()


async def _parts(db: pg_queries.Connection, sha: str) -> int:
    cursor = await db.execute("SELECT COUNT(*) FROM pollerd.payloads WHERE sha256 = %s", (sha,))
    row = await cursor.fetchone()
    return int(row[0]) if row else 0
