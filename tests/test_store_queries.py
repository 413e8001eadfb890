"""Each query of the state, on a real SQLite database: what it returns and what it changes."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pollerd.core.masking import MASK, MASKED
from pollerd.core.model import Event, Resource, ResourceState, Validators
from pollerd.store.sqlite import queries
from pollerd.store.sqlite.schema import connect
from pollerd.store.sqlite.store import SqliteStore, reading, writing


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    with writing(tmp_path) as connection:
        yield connection


def event(resource: str, sequence: int, sha256: str = "a" * 64, size: int = 10) -> Event:
    return Event(
        event_id=Event.make_id("src", resource, sequence, sha256),
        source="src",
        resource=resource,
        url=f"https://example.org/{resource}",
        sequence=sequence,
        sha256=sha256,
        previous_sha256=None,
        size=size,
        content_type="application/json",
        validators=Validators('"e"'),
        detected_at=datetime(2023, 10, 22, 12, tzinfo=UTC),
        extension="json",
    )


def change(
    db: sqlite3.Connection,
    resource: str,
    sequence: int,
    sinks: list[str],
    sha256: str = "a" * 64,
    size: int = 10,
) -> Event:
    state = ResourceState(resource, sequence=sequence, sha256=sha256)
    return queries.record_change(db, "src", state, event(resource, sequence, sha256, size), sinks)


def statuses(db: sqlite3.Connection, sink: str) -> dict[str, int]:
    return {k: v for k, v in queries.delivery_counts(db, sink).items() if v}


def test_states_round_trip_with_errors_masked(db: sqlite3.Connection) -> None:
    MASKED.use(["s3cr3t-key-value"])
    try:
        state = ResourceState("r", url="u", validators=Validators('"x"', "Mon"), failures=2)
        state.last_error = "HTTP 401 for key s3cr3t-key-value"
        queries.save_states(db, "src", [state, ResourceState("q")])
        loaded = queries.load_states(db, "src")
    finally:
        MASKED.use([])
    assert list(loaded) == ["q", "r"]
    assert loaded["r"].validators == Validators('"x"', "Mon")
    assert loaded["r"].last_error == f"HTTP 401 for key {MASK}"
    assert queries.load_states(db, "other") == {}


def test_record_change_commits_state_event_and_one_delivery_per_sink(db: sqlite3.Connection) -> None:
    committed = change(db, "r", 1, ["a", "b"])
    assert committed.sequence == 1
    assert queries.load_states(db, "src")["r"].sequence == 1
    assert [p.event for p in queries.pending_deliveries(db, "a", 10)] == [committed]
    assert queries.outbox_depth(db, "b") == 1


def test_record_change_allocates_past_the_outbox(db: sqlite3.Connection) -> None:
    change(db, "r", 1, ["a"])
    change(db, "r", 2, ["a"])
    queries.save_states(db, "src", [ResourceState("r", sequence=0)])  # a state behind its events
    assert queries.next_sequence(db, "src", "r") == 3
    repaired = change(db, "r", 1, ["a"], sha256="b" * 64)
    assert repaired.sequence == 3
    assert repaired.event_id == Event.make_id("src", "r", 3, "b" * 64)
    assert queries.load_states(db, "src")["r"].sequence == 3


def test_a_failed_change_leaves_nothing(db: sqlite3.Connection) -> None:
    change(db, "r", 1, ["a"])
    with pytest.raises(sqlite3.IntegrityError):  # the same event id twice
        queries.record_change(db, "src", ResourceState("r", sequence=2), event("r", 2), ["a", "a"])
    assert queries.outbox_depth(db, "a") == 1
    assert queries.load_states(db, "src")["r"].sequence == 1


def test_discovery_round_trip(db: sqlite3.Connection) -> None:
    assert queries.load_discovery(db, "src") is None
    found = [Resource("x", "https://h/x.json", "json", key="k1"), Resource("y", "https://h/y.csv")]
    queries.save_discovery(db, "src", found)
    assert queries.load_discovery(db, "src") == found


def test_pending_deliveries_keep_event_order_and_limit(db: sqlite3.Connection) -> None:
    for sequence in (1, 2, 3):
        change(db, "r", sequence, ["a"], sha256=str(sequence) * 64)
    pending = queries.pending_deliveries(db, "a", 2)
    assert [p.event.sequence for p in pending] == [1, 2]
    assert pending[0].attempts == 0 and pending[0].sink == "a"


def test_attempts_retry_and_dead_letters(db: sqlite3.Connection) -> None:
    first = change(db, "r", 1, ["a"])
    queries.mark_attempt(db, first.event_id, "a", "pending", "HTTP 500", 1e12)
    [retry] = queries.pending_deliveries(db, "a", 10)
    assert (retry.attempts, retry.next_attempt) == (1, 1e12)
    queries.mark_attempt(db, first.event_id, "a", "dead", "HTTP 410", None)
    assert statuses(db, "a") == {"dead": 1}
    [row] = queries.list_deliveries(db, "a", ("dead",), 10)
    assert (row.attempts, row.last_error, row.sequence) == (2, "HTTP 410", 1)


def test_settle_closes_only_pending_deliveries(db: sqlite3.Connection) -> None:
    one, two = change(db, "r", 1, ["a"]), change(db, "r", 2, ["a"], sha256="b" * 64)
    queries.mark_attempt(db, one.event_id, "a", "dead", "gone", None)
    queries.settle(db, [one.event_id, two.event_id], "a", "delivered", 1)
    assert statuses(db, "a") == {"dead": 1, "delivered": 1}
    queries.settle(db, [two.event_id], "a", "superseded", 0)  # already delivered: unchanged
    assert statuses(db, "a") == {"dead": 1, "delivered": 1}


def test_outbox_bytes_count_pending_payloads(db: sqlite3.Connection) -> None:
    one = change(db, "r", 1, ["a"], size=100)
    change(db, "s", 1, ["a"], size=50)
    assert queries.outbox_bytes(db, "a") == 150
    queries.settle(db, [one.event_id], "a", "delivered", 1)
    assert queries.outbox_bytes(db, "a") == 50
    assert queries.outbox_bytes(db, "b") == 0


def test_delivery_counts_name_every_status(db: sqlite3.Connection) -> None:
    change(db, "r", 1, ["a"])
    assert queries.delivery_counts(db, "a") == {
        "pending": 1,
        "delivered": 0,
        "filtered": 0,
        "dead": 0,
        "superseded": 0,
    }


def test_list_deliveries_filters_by_status_and_sink(db: sqlite3.Connection) -> None:
    one, two = change(db, "r", 1, ["a", "b"]), change(db, "s", 1, ["a"], sha256="c" * 64)
    queries.settle(db, [one.event_id], "a", "superseded", 0)
    assert [r.event_id for r in queries.list_deliveries(db, "a", ("superseded",), 10)] == [one.event_id]
    both = queries.list_deliveries(db, "a", ("pending", "superseded"), 10)
    assert [r.event_id for r in both] == [one.event_id, two.event_id]
    assert [r.status for r in queries.list_deliveries(db, "b", ("pending",), 10)] == ["pending"]


def test_event_sha256(db: sqlite3.Connection) -> None:
    committed = change(db, "r", 1, ["a"], sha256="d" * 64)
    assert queries.event_sha256(db, committed.event_id) == "d" * 64
    assert queries.event_sha256(db, "no-such-event") is None


def test_redeliver_dead_ones_or_one_event(db: sqlite3.Connection) -> None:
    one, two = change(db, "r", 1, ["a", "b"]), change(db, "r", 2, ["a"], sha256="b" * 64)
    queries.mark_attempt(db, one.event_id, "a", "dead", "x", None)
    queries.mark_attempt(db, one.event_id, "b", "dead", "x", None)
    queries.settle(db, [two.event_id], "a", "delivered", 1)
    assert queries.redeliver(db, None, "b") == 1  # dead ones, of one sink
    assert statuses(db, "a") == {"dead": 1, "delivered": 1}
    assert queries.redeliver(db, two.event_id, None) == 1  # one event, delivered before
    assert statuses(db, "a") == {"dead": 1, "pending": 1}
    assert queries.redeliver(db, None, None) == 1
    assert statuses(db, "a") == {"pending": 2}
    [again] = [p for p in queries.pending_deliveries(db, "a", 10) if p.event.sequence == 1]
    assert again.attempts == 0


def test_blob_in_use_while_pending_dead_or_current(db: sqlite3.Connection) -> None:
    one = change(db, "r", 1, ["a"], sha256="1" * 64)
    assert queries.blob_in_use(db, "1" * 64)
    change(db, "r", 2, ["a"], sha256="2" * 64)  # the state now holds version 2
    queries.mark_attempt(db, one.event_id, "a", "dead", "x", None)
    assert queries.blob_in_use(db, "1" * 64)  # it may be redelivered
    queries.redeliver(db, one.event_id, None)
    queries.settle(db, [one.event_id], "a", "delivered", 1)
    assert not queries.blob_in_use(db, "1" * 64)
    assert queries.blob_in_use(db, "2" * 64)
    assert not queries.blob_in_use(db, "f" * 64)


def test_whether_a_payload_is_in_use_is_asked_without_reading_every_resource(
    db: sqlite3.Connection,
) -> None:
    """Released payloads are asked about one by one: a question that scanned every resource's
    state would cost what is watched (9 ms at 10,000 resources), not what changed."""
    change(db, "r", 1, ["a"], sha256="1" * 64)
    asked: list[str] = []
    db.set_trace_callback(asked.append)
    try:
        queries.blob_in_use(db, "f" * 64, kept_after=0.0)
    finally:
        db.set_trace_callback(None)
    plans = [
        row[3] for statement in asked for row in db.execute(f"EXPLAIN QUERY PLAN {statement}").fetchall()
    ]
    assert asked and plans
    assert not [plan for plan in plans if plan.startswith("SCAN")], plans


def test_stopped_sources(db: sqlite3.Connection) -> None:
    assert queries.source_note(db, "src", "stopped") is None
    queries.note_source(db, "src", "stopped", "the key was refused")
    queries.note_source(db, "src", "discovery", "CKAN answered 503")
    assert queries.source_note(db, "src", "stopped") == "the key was refused"
    queries.note_source(db, "src", "stopped", None)
    assert queries.source_note(db, "src", "stopped") is None
    assert queries.source_note(db, "src", "discovery") == "CKAN answered 503"


def test_reading_makes_no_state(tmp_path: Path) -> None:
    with reading(tmp_path / "none") as nothing:
        assert nothing is None
    assert not (tmp_path / "none").exists()


async def test_the_daemon_facade_runs_the_same_queries(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path)
    await store.open()
    try:
        assert store.created
        payload = tmp_path / "payload.json"  # SQLite keeps payloads as files: it is not read
        committed = await store.record_change(
            "src", ResourceState("r", sequence=1), event("r", 1), ["a"], payload
        )
        assert await store.outbox_depth("a") == 1
        await store.mark_delivered([committed.event_id], "a")
        assert (await store.delivery_counts("a"))["delivered"] == 1
    finally:
        await store.close()
    db, created = connect(tmp_path / "pollerd.sqlite3")
    db.close()
    assert not created
