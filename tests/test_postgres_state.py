"""The daemon on PostgreSQL (``[daemon] database``): the same pipeline, its state and payloads in
the database, so another machine continues where it stopped; one writer at a time (until leases
share the sources between replicas); the command line's reports and redelivery read it too."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import psycopg
import pytest

from pollerd.cli import main
from pollerd.config import Config, ConfigError, load_config, parse_config
from pollerd.daemon.app import Daemon
from pollerd.daemon.status_html import render
from pollerd.sim.ap import ApServer
from tests.conftest import (
    AP_KEY,
    Receiver,
    Upstream,
    config_file,
    opened,
    sample,
    versions_on_disk,
    wait_for,
)
from tests.test_replicas import write_replica


def pg_config(tmp_path: Path, machine: str, urls: list[str], database: str) -> Path:
    """A config whose state is ``database``; ``machine`` names its own state_dir (temporary files)."""
    folder = tmp_path / machine
    folder.mkdir(exist_ok=True)
    return config_file(folder, urls, daemon=f'metrics = "off"\ndatabase = "{database}"')


async def test_a_second_machine_continues_where_the_first_stopped(
    upstream: Upstream, postgres_url: str, tmp_path: Path
) -> None:
    """Versions recorded on one machine are neither downloaded nor announced again by another
    machine on the same database; the next version is its sequence 2; payloads come from the
    database."""
    url = upstream.file("/a.json", b'{"v": 1}')
    first = load_config(pg_config(tmp_path, "one", [url], postgres_url))
    async with opened(first) as daemon:
        assert await daemon.run_once()
    assert len(versions_on_disk(tmp_path / "one" / "out", "files", "a.json")) == 1
    second = load_config(pg_config(tmp_path, "two", [url], postgres_url))
    async with opened(second) as daemon:
        assert await daemon.run_once()
        assert sample(daemon, "pollerd_changes_total", source="files") == 0
        assert (
            sample(daemon, "pollerd_downloaded_bytes_total", source="files") == 0
        )  # HEAD said 200, same ETag
        upstream.host.publish("/a.json", b'{"v": 2}')
        assert await daemon.run_once()
        assert (await daemon.store.load_states("files"))["a.json"].sequence == 2
    [version] = versions_on_disk(tmp_path / "two" / "out", "files", "a.json")
    assert json.loads(version.read_bytes()) == {"v": 2}
    assert not (tmp_path / "two" / "state" / "pollerd.sqlite3").exists()


def replica_config(tmp_path: Path, replica: str, urls: list[str], database: str, hook: str) -> Config:
    """One replica of one source per URL (a lease each) and a webhook sink (a lease too)."""
    return load_config(write_replica(tmp_path, replica, urls, database, hook))


@asynccontextmanager
async def replica(config: Config) -> AsyncIterator[Daemon]:
    """A replica running (``run``) until the block ends: then it stops cleanly."""
    daemon = Daemon(config)
    await daemon.open()
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    try:
        yield daemon
    finally:
        stop.set()
        await task
        await daemon.close()


def held(*daemons: Daemon) -> list[set[str]]:
    return [set(d.shared.keeper.held) if d.shared else set() for d in daemons]


async def test_two_replicas_share_the_work_and_hand_it_over(
    upstream: Upstream, receiver: Receiver, postgres_url: str, tmp_path: Path
) -> None:
    """Each replica holds a fair share of the five leases (four sources, one sink), every version
    reaches the sink once, and a replica that stops hands its work over at once."""
    urls = [upstream.file(f"/f{i}.json", b'{"v": 1}') for i in range(4)]
    one = replica_config(tmp_path, "one", urls, postgres_url, receiver.url)
    two = replica_config(tmp_path, "two", urls, postgres_url, receiver.url)
    async with replica(two) as second:
        async with replica(one) as first:
            await wait_for(lambda: sorted(map(len, held(first, second))) == [2, 3], 30)  # ceil(5 / 2)
            page = render(await first.status(), None)
            assert "<h3>Replicas</h3>" in page and "<b>one</b>" in page and "sink:hook" in page
            await wait_for(lambda: len(receiver.requests) == 4, 30)
            for i in range(4):
                upstream.host.publish(f"/f{i}.json", b'{"v": 2}')
            await wait_for(lambda: len(receiver.requests) == 8, 30)
        await wait_for(lambda: len(held(second)[0]) == 5, 30)  # handed over, not waited out
        for i in range(4):
            upstream.host.publish(f"/f{i}.json", b'{"v": 3}')
        await wait_for(lambda: len(receiver.requests) == 12, 30)
    headers = [r.headers for r in receiver.requests]
    assert len({h["X-Pollerd-Event-Id"] for h in headers}) == 12
    assert all(int(h["X-Pollerd-Epoch"]) >= 1 for h in headers)  # the sink lease's epoch
    assert sorted((h["X-Pollerd-Source"], int(h["X-Pollerd-Sequence"])) for h in headers) == sorted(
        (f"s{i}", n) for i in range(4) for n in (1, 2, 3)
    )


async def test_reports_and_redelivery_read_the_database(
    upstream: Upstream, postgres_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = upstream.file("/a.json", b'{"v": 1}')
    path = pg_config(tmp_path, "one", [url], postgres_url)
    async with opened(load_config(path)) as daemon:
        assert await daemon.run_once()
    capsys.readouterr()
    assert await _cli("status", "-c", str(path), "--json") == 0
    status = json.loads(capsys.readouterr().out)
    assert status["sources"]["files"][0]["sequence"] == 1
    assert {row["name"] for row in status["leases"]} == {"source:files", "sink:out"}  # given back
    assert await _cli("deliveries", "-c", str(path), "--json") == 0
    assert json.loads(capsys.readouterr().out)["out"]["counts"]["delivered"] == 1
    event_file = tmp_path / "one" / "out" / "files" / "a.json" / "latest.event.json"
    event_id = json.loads(event_file.read_text())["event_id"]
    assert await _cli("redeliver", "-c", str(path), event_id) == 0
    assert "1 delivery of event" in capsys.readouterr().out


def test_the_database_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A libpq URL (from the environment too); a password from a file; neither is ever shown."""
    monkeypatch.setenv("PG_URL", "postgresql://pollerd:pa%2Fss-word-1@db.internal/pollerd")
    secret = tmp_path / "pg-password"
    secret.write_text("file-password-2\n")
    base = {"sources": [{"name": "s", "kind": "http", "urls": ["https://e.org/a"], "sinks": ["o"]}]}
    sinks = {"sinks": [{"name": "o", "kind": "stdout"}]}
    config = parse_config(
        {"daemon": {"database": "${PG_URL}", "database_password_file": str(secret)}, **base, **sinks}
    )
    assert config.daemon.database_password is not None
    assert config.daemon.database_password.get_secret_value() == "file-password-2"
    assert {"pa/ss-word-1", "pa%2Fss-word-1", "file-password-2"} <= set(config.secret_values())
    assert "pa%2Fss" not in repr(config) and "file-password" not in config.model_dump_json()
    for wrong, why in (
        ({"database": "mysql://db/x"}, "daemon.database: must be a libpq URL"),
        ({"database_password": "x"}, "database_password: not a key"),
    ):
        with pytest.raises(ConfigError, match=why):
            parse_config({"daemon": wrong, **base, **sinks})


async def _cli(*args: str) -> int:
    return await asyncio.to_thread(main, list(args))


async def test_migrate_state_moves_pending_deliveries_without_announcing_again(
    upstream: Upstream, postgres_url: str, tmp_path: Path
) -> None:
    """A SQLite state with a delivery still pending moves into PostgreSQL: the replica delivers
    it once under its id, and the unchanged resource is not announced again."""
    url = upstream.file("/a.json", b'{"v": 1}')
    out = tmp_path / "one" / "out"
    (tmp_path / "one").mkdir()
    sqlite_config = config_file(tmp_path / "one", [url])
    out.write_text("a file where the sink's folder should be: the delivery stays pending")
    async with opened(load_config(sqlite_config)) as daemon:
        assert not await daemon.run_once()
    moved_config = pg_config(tmp_path, "one", [url], postgres_url)  # the same state_dir and sink
    assert await _cli("migrate-state", "-c", str(moved_config)) == 0
    assert await _cli("migrate-state", "-c", str(moved_config)) == 1  # refused: already there
    out.unlink()
    async with opened(load_config(moved_config)) as daemon:
        assert await daemon.run_once()
        assert sample(daemon, "pollerd_changes_total", source="files") == 0
        assert (await daemon.store.load_states("files"))["a.json"].sequence == 1
    [version] = versions_on_disk(out, "files", "a.json")
    assert json.loads(version.read_bytes()) == {"v": 1}


async def test_two_replicas_never_spend_one_ap_key_twice(
    ap: tuple[ApServer, str], postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two AP sources on one key, two replicas, an AP that allows 2 requests a minute: the sources
    that share the key share one lease, so one replica spends the key; the first holder spends
    the whole minute's quota and stops, and the replica taking over counts what it spent and asks
    nothing more in that minute: AP never answers 403."""
    replay, base = ap
    replay.quota_per_minute = 2
    monkeypatch.setenv("AP_KEY", AP_KEY)
    source = {
        "kind": "ap",
        "api": base,
        "election_date": "2026-11-03",
        "api_key": "${AP_KEY}",
        "quota_per_minute": 2,
        "interval": "1s",
        "queries": [{"name": "co", "statePostal": "CO"}],
        "sinks": ["console"],
    }
    configs = [
        parse_config(
            {
                "daemon": {
                    "state_dir": str(tmp_path / name),
                    "metrics": "off",
                    "database": postgres_url,
                    "replica": name,
                    "lease_ttl": "1s",
                },
                "sources": [{**source, "name": "ap-a"}, {**source, "name": "ap-b"}],
                "sinks": [{"name": "console", "kind": "stdout"}],
            }
        )
        for name in ("one", "two")
    ]
    async with AsyncExitStack() as running, AsyncExitStack() as running_first:
        first = await running_first.enter_async_context(replica(configs[0]))
        await wait_for(lambda: len(replay.log) == 2, 30)  # the minute's quota: one request each
        second = await running.enter_async_context(replica(configs[1]))
        await wait_for(lambda: sorted(map(len, held(first, second))) == [1, 1], 30)
        assert {"ap-a", "ap-b"} in ({*first.pollers}, {*second.pollers})  # together, on one replica
        await running_first.aclose()  # the first stops; if it still spent the key, it hands it over now
        await wait_for(lambda: {"ap-a", "ap-b"} <= {*second.pollers}, 30)
        replay.election.advance()
        await asyncio.sleep(1.0)  # the new holder's first cycles: any request would be a 403
        assert second.shared is not None
        assert second.shared.context.budgets.for_key(AP_KEY, 2).used == 2  # the first's spends count
    assert len(replay.log) == 2
    assert replay.quota_answers == 0


async def test_a_standby_is_healthy_and_ready(
    upstream: Upstream, receiver: Receiver, postgres_url: str, tmp_path: Path
) -> None:
    """Three replicas for two leases (a source, a sink): the one that holds none polls nothing,
    and is idle, not stuck: healthy and ready."""
    urls = [upstream.file("/f0.json", b"{}")]
    configs = []
    for name in ("one", "two", "three"):
        config = replica_config(tmp_path, name, urls, postgres_url, receiver.url)
        configs.append(
            config.model_copy(update={"daemon": config.daemon.model_copy(update={"stall_after": 0.5})})
        )
    async with replica(configs[0]) as one, replica(configs[1]) as two, replica(configs[2]) as three:
        await wait_for(lambda: sorted(map(len, held(one, two, three))) == [0, 1, 1], 30)
        [standby] = [d for d in (one, two, three) if not held(d)[0]]
        await asyncio.sleep(1.5)  # three stall_after lengths with nothing scheduled
        assert not held(standby)[0]
        assert standby.health.problem() is None
        assert standby.readiness() is None


async def test_a_cycle_whose_lease_is_taken_stops_whole_and_blames_no_resource(
    upstream: Upstream,
    receiver: Receiver,
    postgres_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Another holder takes the source's lease mid-night: the replica's next change is refused,
    the source's work stops at once and is counted; no resource is marked failed for it."""
    urls = [upstream.file(f"/f{i}.json", b'{"v": 1}') for i in range(3)]
    async with replica(replica_config(tmp_path, "one", urls[:1], postgres_url, receiver.url)) as daemon:
        await wait_for(lambda: len(receiver.requests) == 1, 30)
        async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as db:
            await db.execute(
                "UPDATE pollerd.leases SET holder = 'thief', epoch = epoch + 1,"
                " expires_at = pollerd.clock() + 60 WHERE name = 'source:s0'"
            )
        upstream.host.publish("/f0.json", b'{"v": 2}')
        await wait_for(lambda: "s0" not in daemon.pollers, 30)
        assert sample(daemon, "pollerd_fenced_writes_total", lease="source:s0") == 1
        state = (await daemon.store.load_states("s0"))["f0.json"]
        assert state.sequence == 1 and state.failures == 0
    assert "poll crashed" not in capsys.readouterr().err
