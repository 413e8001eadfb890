"""Replica processes on one PostgreSQL: a replica killed (``kill -9``) or frozen (``SIGSTOP``)
mid-night loses its work to the other within its lease, nothing is lost, and no version is
announced under a second event id (a repeat of the same id is allowed: at-least-once)."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from tests.conftest import Receiver, Upstream, wait_for, webhook_sink
from tests.postgres import Cluster
from tests.test_crash import pollerd

TTL = 1.0


def write_replica(tmp_path: Path, name: str, urls: list[str], database: str, hook: str) -> Path:
    """The config file of replica ``name``: one http source per URL, polled every 200 ms, into a
    webhook sink retrying fast; lease_ttl 1 s."""
    sources = "".join(
        f'[[sources]]\nname = "s{i}"\nkind = "http"\nurls = ["{url}"]\ninterval = "200ms"\nsinks = ["hook"]\n'
        for i, url in enumerate(urls)
    )
    return replica_file(tmp_path, name, database, sources + fast_webhook(hook))


def replica_file(tmp_path: Path, name: str, database: str, tables: str) -> Path:
    """The config file of replica ``name`` on ``database`` (lease_ttl 1 s, its own state_dir for
    temporary files), with the given sources and sinks tables."""
    path = tmp_path / f"{name}.toml"
    path.write_text(
        f'[daemon]\nstate_dir = "{tmp_path / name}"\nmetrics = "off"\nlog_level = "warning"\n'
        f'database = "{database}"\nreplica = "{name}"\nlease_ttl = "{TTL:g}s"\n{tables}'
    )
    return path


def fast_webhook(url: str) -> str:
    """The ``hook`` sink: a webhook to ``url`` retrying every 100-200 ms."""
    return webhook_sink(url, 'retry_base = "100ms"\nretry_max = "200ms"\n')


def holders(database: str) -> dict[str, str]:
    """Lease name -> holder, of the leases not expired (none before a replica made the schema)."""
    with psycopg.connect(database) as db:
        try:
            rows = db.execute("SELECT name, holder FROM pollerd.leases WHERE expires_at > pollerd.clock()")
        except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedFunction):
            return {}
        return {str(name): str(holder) for name, holder in rows.fetchall()}


@pytest.fixture
async def two_replicas(
    upstream: Upstream, receiver: Receiver, postgres_url: str, tmp_path: Path
) -> AsyncIterator[dict[str, asyncio.subprocess.Process]]:
    """Replicas "one" and "two" running four sources and a webhook sink, both holding work,
    every first version delivered."""
    urls = [upstream.file(f"/f{i}.json", b'{"v": 1}') for i in range(4)]
    replicas = {
        name: await pollerd("run", "-c", str(write_replica(tmp_path, name, urls, postgres_url, receiver.url)))
        for name in ("one", "two")
    }
    try:
        await wait_for(lambda: set(holders(postgres_url).values()) == {"one", "two"}, 30)
        await wait_for(lambda: len(receiver.requests) >= 4, 30)
        yield replicas
    finally:
        for process in replicas.values():
            if process.returncode is None:
                os.kill(process.pid, signal.SIGCONT)
                process.terminate()
                await process.wait()


def announced(receiver: Receiver) -> dict[tuple[str, int], set[str]]:
    """(source, sequence) -> the event ids it reached the sink under."""
    found: dict[tuple[str, int], set[str]] = {}
    for request in receiver.requests:
        key = (request.headers["X-Pollerd-Source"], int(request.headers["X-Pollerd-Sequence"]))
        found.setdefault(key, set()).add(request.headers["X-Pollerd-Event-Id"])
    return found


async def test_kill_9_of_the_delivering_replica(
    two_replicas: dict[str, asyncio.subprocess.Process],
    upstream: Upstream,
    receiver: Receiver,
    postgres_url: str,
) -> None:
    """The replica that delivers is killed: the other takes its leases when they expire and
    delivers every later version; each version under one event id."""
    victim = holders(postgres_url)["sink:hook"]
    survivor = "two" if victim == "one" else "one"
    os.kill(two_replicas[victim].pid, signal.SIGKILL)
    await two_replicas[victim].wait()
    for i in range(4):
        upstream.host.publish(f"/f{i}.json", b'{"v": 2}')
    await wait_for(lambda: set(holders(postgres_url).values()) == {survivor}, 30)
    await wait_for(lambda: len(announced(receiver)) == 8, 30)
    assert sorted(announced(receiver)) == sorted((f"s{i}", n) for i in range(4) for n in (1, 2))
    assert all(len(ids) == 1 for ids in announced(receiver).values())
    epochs = {
        n: {
            int(r.headers["X-Pollerd-Epoch"])
            for r in receiver.requests
            if r.headers["X-Pollerd-Sequence"] == str(n)
        }
        for n in (1, 2)
    }
    assert min(epochs[2]) > max(epochs[1])  # taken over: a receiver can refuse the old holder


async def test_a_frozen_replica_cannot_write_late(
    two_replicas: dict[str, asyncio.subprocess.Process],
    upstream: Upstream,
    receiver: Receiver,
    postgres_url: str,
) -> None:
    """A replica stopped (SIGSTOP) for three lease lengths: the other takes over its work; when it
    wakes, its late writes are refused, and no version reaches the sink under a second id."""
    frozen = holders(postgres_url)["sink:hook"]
    os.kill(two_replicas[frozen].pid, signal.SIGSTOP)
    for i in range(4):
        upstream.host.publish(f"/f{i}.json", b'{"v": 2}')
    await asyncio.sleep(3 * TTL)
    await wait_for(lambda: len(announced(receiver)) == 8, 30)
    os.kill(two_replicas[frozen].pid, signal.SIGCONT)
    for i in range(4):
        upstream.host.publish(f"/f{i}.json", b'{"v": 3}')
    await wait_for(lambda: len(announced(receiver)) == 12, 30)
    await wait_for(lambda: set(holders(postgres_url).values()) == {"one", "two"}, 30)  # a share again
    assert sorted(announced(receiver)) == sorted((f"s{i}", n) for i in range(4) for n in (1, 2, 3))
    assert all(len(ids) == 1 for ids in announced(receiver).values())


async def test_a_database_outage_loses_nothing(
    two_replicas: dict[str, asyncio.subprocess.Process],
    upstream: Upstream,
    receiver: Receiver,
    postgres_url: str,
    postgres_cluster: Cluster,
) -> None:
    """PostgreSQL stopped as by a crash for 10 s mid-night: the replicas keep running, commit
    nothing meanwhile, and when it is back every version reaches the sink, each under one id."""
    postgres_cluster.stop("immediate")
    try:
        for i in range(4):
            upstream.host.publish(f"/f{i}.json", b'{"v": 2}')
        await asyncio.sleep(10)
        assert all(process.returncode is None for process in two_replicas.values())
    finally:
        postgres_cluster.restart()  # the other tests' databases are on it too
    await wait_for(lambda: len(announced(receiver)) == 8, 60)
    for i in range(4):
        upstream.host.publish(f"/f{i}.json", b'{"v": 3}')
    await wait_for(lambda: len(announced(receiver)) == 12, 60)
    assert sorted(announced(receiver)) == sorted((f"s{i}", n) for i in range(4) for n in (1, 2, 3))
    assert all(len(ids) == 1 for ids in announced(receiver).values())
