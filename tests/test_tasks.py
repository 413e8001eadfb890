"""Long-running tasks survive their errors, and say so: a full disk while acknowledging."""

from __future__ import annotations

import asyncio
import functools
import resource
import signal
import socket
import sqlite3
import time
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from pollerd.config import parse_config
from pollerd.polling.file_poller import SourcePoller
from pollerd.sim import Fault
from pollerd.telemetry.metrics import Metrics
from pollerd.telemetry.tasks import TaskHealth, describe, retrying
from tests.conftest import Upstream, config_file, serve_receiver, wait_for, webhook_sink
from tests.test_crash import pollerd
from tests.test_operations import running


async def until_answers(url: str, wanted: int, tries: int = 300) -> int:
    """GET ``url`` every 0.1 s until it answers ``wanted`` (or ``tries`` run out); the last status."""
    status = 0
    for _ in range(tries):
        status, _ = await fetch(url)
        if status == wanted:
            break
        await asyncio.sleep(0.1)
    return status


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def fetch(url: str) -> tuple[int, str]:
    """Status and text of a GET (connection errors: status 0)."""
    try:
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            return response.status, await response.text()
    except aiohttp.ClientError as exc:
        return 0, str(exc)


async def test_a_full_disk_while_acknowledging_does_not_end_delivery(
    upstream: Upstream, tmp_path: Path
) -> None:
    """The daemon's files are capped at 1 byte (RLIMIT_FSIZE: writes fail with EFBIG, as on a
    full disk) while the receiver holds the second delivery: committing its acknowledgement fails.
    /healthz turns 503 naming the sink and the reason, the failure is counted; once the disk has
    room again the loop goes on by itself and the third version is delivered (at least once)."""
    bodies: list[bytes] = []
    hold = asyncio.Event()

    async def handle(request: web.Request) -> web.Response:
        bodies.append(await request.read())
        if len(bodies) == 2:
            await hold.wait()
        return web.Response(text="ok")

    server, hook = await serve_receiver(handle)
    upstream.file("/a.json", b'{"v": 1}')
    port = free_port()
    config = config_file(
        tmp_path,
        [upstream.url("/a.json")],
        sink=webhook_sink(hook),
        sink_name="hook",
        daemon=f'metrics = "127.0.0.1:{port}"\nlog_format = "json"',
        source='interval = "200ms"',
    )
    daemon = await pollerd("run", "-c", str(config))
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_for(lambda: len(bodies) == 1, timeout=30)
        upstream.host.publish("/a.json", b'{"v": 2}')
        await wait_for(lambda: len(bodies) == 2, timeout=30)
        resource.prlimit(daemon.pid, resource.RLIMIT_FSIZE, (1, resource.RLIM_INFINITY))
        hold.set()
        status, text = 200, ""
        for _ in range(200):
            status, text = await fetch(f"{base}/healthz")
            if status == 503:
                break
            await asyncio.sleep(0.1)
        assert status == 503 and "deliver:hook" in text and "disk" in text, text
        _, metrics = await fetch(f"{base}/metrics")
        failures = next(
            line
            for line in metrics.splitlines()
            if line.startswith('pollerd_task_failures_total{task="deliver:hook"}')
        )
        assert float(failures.split()[-1]) >= 1
        resource.prlimit(daemon.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        upstream.host.publish("/a.json", b'{"v": 3}')
        await wait_for(lambda: b'{"v": 3}' in bodies, timeout=60)
        assert await until_answers(f"{base}/healthz", 200) == 200
    finally:
        hold.set()
        daemon.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(daemon.communicate(), timeout=60)
        await server.close()
    log = stderr.decode()
    assert log.count('"task failing; retrying with backoff"') == 1  # once, not every retry
    assert '"task working again"' in log


async def test_a_task_that_dies_turns_health_red() -> None:
    """A task that ends (it never should) is reported until restart; cancelling is no death."""
    health = TaskHealth(Metrics())

    async def broken() -> None:
        raise RuntimeError("the loop fell over")

    dying = asyncio.create_task(broken(), name="deliver:x")
    health.watch(dying)
    cancelled = asyncio.create_task(asyncio.sleep(60), name="deliver:y")
    health.watch(cancelled)
    cancelled.cancel()
    await asyncio.gather(dying, cancelled, return_exceptions=True)
    assert health.problem() == "task deliver:x died: the loop fell over (RuntimeError)"


async def test_retrying_reports_once_and_recovers() -> None:
    """Two failures with one reason: one report; then success clears it."""
    metrics = Metrics()
    health = TaskHealth(metrics)
    outcomes = [OSError(28, "No space left on device"), OSError(28, "No space left on device")]
    done = asyncio.Event()

    async def work() -> None:
        if outcomes:
            raise outcomes.pop(0)
        if done.is_set():
            await asyncio.sleep(60)
        done.set()

    runner = asyncio.create_task(retrying(health, "deliver:x", work))
    await asyncio.wait_for(done.wait(), timeout=10)
    await asyncio.sleep(0)
    runner.cancel()
    assert health.problem() is None
    assert metrics.registry.get_sample_value("pollerd_task_failures_total", {"task": "deliver:x"}) == 2
    assert (
        describe(OSError(28, "No space left on device", "state/pollerd.sqlite3-wal"))
        == "disk full on state/pollerd.sqlite3-wal"
    )


async def test_a_hanging_resource_does_not_hold_up_its_neighbour(upstream: Upstream, tmp_path: Path) -> None:
    """slow.json answers after 6 s, every time; fast.json changes every 0.5 s: each of its six
    versions is committed within a second of being published, and slow.json is not asked again
    while its answer is outstanding."""
    fast = upstream.file("/fast.json", b'{"v": 0}')
    slow = upstream.file("/slow.json", b'{"slow": true}')
    upstream.host.inject("/slow.json", Fault("slow", count=-1, delay=6.0))
    config = parse_config(
        {
            "daemon": {"state_dir": str(tmp_path / "state"), "metrics": "off"},
            "sources": [
                {"name": "files", "kind": "http", "urls": [fast, slow], "interval": "200ms", "sinks": ["out"]}
            ],
            "sinks": [{"name": "out", "kind": "filesystem", "root": str(tmp_path / "out")}],
        }
    )
    async with running(config) as (daemon, _):
        states = daemon.pollers["files"].states
        await wait_for(lambda: "fast.json" in states and states["fast.json"].sequence == 1)
        lags: list[float] = []
        for version in range(1, 7):
            upstream.host.publish("/fast.json", f'{{"v": {version}}}'.encode())
            published = time.monotonic()
            await wait_for(
                functools.partial(lambda v: states["fast.json"].sequence == v + 1, version), timeout=5
            )
            lags.append(time.monotonic() - published)
            await asyncio.sleep(max(0.0, 0.5 - lags[-1]))
        poller = daemon.pollers["files"]
        assert isinstance(poller, SourcePoller) and len(poller.stragglers) == 1  # slow.json, once
    assert max(lags) < 1.0, lags


@pytest.mark.parametrize("interval", ["200ms", "3s"])
async def test_sigterm_lets_the_poll_and_the_delivery_in_flight_finish(
    upstream: Upstream, tmp_path: Path, interval: str
) -> None:
    """SIGTERM while a version downloads (its answer takes 1.5 s) and while the receiver holds a
    POST for 1.5 s: both finish, the change is committed and, once the polls are done, delivered
    too (within drain_grace, so the last versions of a night reach the sinks before the exit); the
    daemon exits 0 with no traceback, well within drain_grace. At 200 ms the slow download runs
    on past its cycle (a straggler); at 3 s it is the cycle's own."""
    posts: list[bytes] = []
    answered: list[bytes] = []

    async def handle(request: web.Request) -> web.Response:
        posts.append(await request.read())
        await asyncio.sleep(1.5)
        answered.append(posts[-1])
        return web.Response(text="ok")

    server, hook = await serve_receiver(handle)
    upstream.file("/a.json", b'{"v": 1}')
    upstream.file("/b.json", b'{"v": 1}')
    config = config_file(
        tmp_path,
        [upstream.url("/a.json"), upstream.url("/b.json")],
        sink=webhook_sink(hook),
        sink_name="hook",
        daemon='metrics = "off"\nlog_format = "json"',
        source=f'interval = "{interval}"',
    )
    daemon = await pollerd("run", "-c", str(config))
    try:
        await wait_for(lambda: len(answered) == 2, timeout=30)
        upstream.host.inject("/b.json", Fault("slow", delay=1.5))
        upstream.host.publish("/a.json", b'{"v": 2}')
        upstream.host.publish("/b.json", b'{"v": 2}')
        await wait_for(lambda: len(posts) == 3 and upstream.host.in_flight > 0, timeout=30)
        started = time.monotonic()
        daemon.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(daemon.communicate(), timeout=30)
        took = time.monotonic() - started
    finally:
        if daemon.returncode is None:
            daemon.kill()
        await server.close()
    log = stderr.decode()
    assert daemon.returncode == 0, log[-3000:]
    assert "Traceback" not in log and "CancelledError" not in log, log[-3000:]
    assert answered == [b'{"v": 1}', b'{"v": 1}', b'{"v": 2}', b'{"v": 2}'] and took < 10
    assert '"drained"' in log and '"polls_abandoned": 0' in log and '"deliveries_abandoned": 0' in log
    with sqlite3.connect(tmp_path / "state/pollerd.sqlite3") as db:
        versions = db.execute("SELECT resource, MAX(sequence) FROM events GROUP BY resource")
        assert dict(versions.fetchall()) == {"a.json": 2, "b.json": 2}
        acked = db.execute("SELECT status, COUNT(*) FROM deliveries GROUP BY status").fetchall()
    assert dict(acked) == {"delivered": 4}  # a1, b1, a2, and b2, recorded while draining
