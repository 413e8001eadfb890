"""Durability: kill -9 with a delivery pending, restart, delivered exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from pathlib import Path

from aiohttp import web

from tests.conftest import (
    Receiver,
    Upstream,
    config_file,
    serve_receiver,
    versions_on_disk,
    wait_for,
    webhook_sink,
)


def write_config(tmp_path: Path, url: str, out: Path, sink: str | None = None) -> Path:
    """A config polling ``url`` every 300 ms into a filesystem sink writing to ``out`` (or the
    ``[[sinks]]`` TOML given), retrying deliveries quickly."""
    sink = sink or (
        f'[[sinks]]\nname = "out"\nkind = "filesystem"\nroot = "{out}"\n'
        'retry_base = "100ms"\nretry_max = "200ms"\n'
    )
    return config_file(
        tmp_path, [url], daemon='metrics = "off"\nlog_format = "json"', source='interval = "300ms"', sink=sink
    )


def pending_deliveries(state_dir: Path) -> int:
    """Pending outbox rows, read straight from the SQLite file."""
    path = state_dir / "pollerd.sqlite3"
    if not path.exists():
        return 0
    with sqlite3.connect(path, timeout=5) as db:
        try:
            row = db.execute("SELECT COUNT(*) FROM deliveries WHERE status='pending'").fetchone()
        except sqlite3.OperationalError:
            return 0
    return int(row[0])


async def pollerd(*args: str, env: dict[str, str] | None = None) -> asyncio.subprocess.Process:
    """Start ``python -m pollerd`` with the given arguments (stderr piped, stdout dropped)."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pollerd",
        *args,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_kill_9_with_pending_delivery_is_delivered_once_after_restart(
    upstream: Upstream, tmp_path: Path
) -> None:
    """The change sits in the outbox when the daemon is killed; the next run delivers it once."""
    upstream.file("/a.json", b'{"v": 1}')
    out = tmp_path / "out"
    out.write_text("not a directory yet: deliveries fail and stay pending")
    config = write_config(tmp_path, upstream.url("/a.json"), out)
    daemon = await pollerd("run", "-c", str(config))
    await wait_for(lambda: pending_deliveries(tmp_path / "state") > 0, timeout=30)
    os.kill(daemon.pid, signal.SIGKILL)
    await daemon.wait()
    assert not list(tmp_path.glob("out/**/*.json"))

    out.unlink()
    once = await pollerd("once", "-c", str(config))
    _, stderr = await once.communicate()
    assert once.returncode == 0, stderr.decode()
    assert len(versions_on_disk(out, "files", "a.json")) == 1
    assert (out / "files" / "a.json" / "latest.json").read_bytes() == b'{"v": 1}'
    assert pending_deliveries(tmp_path / "state") == 0

    again = await pollerd("once", "-c", str(config))
    await again.communicate()
    assert again.returncode == 0
    assert len(versions_on_disk(out, "files", "a.json")) == 1
    assert len(list((out / "files" / "a.json").glob("*.event.json"))) == 2  # version + latest


async def test_kill_9_with_a_webhook_pending_then_the_receiver_gets_it(
    upstream: Upstream, receiver: Receiver, tmp_path: Path
) -> None:
    """The receiver is down (503) when the daemon is killed; after a restart it gets the event,
    with the idempotency key it was first offered with."""
    receiver.answers = [(503, {})] * 1000
    upstream.file("/a.json", b'{"v": 1}')
    sink = f'''
[[sinks]]
name = "out"
kind = "webhook"
url = "{receiver.url}"
secret = "s3cret-for-the-test"
retry_base = "100ms"
retry_max = "200ms"
'''
    config = write_config(tmp_path, upstream.url("/a.json"), tmp_path / "out", sink)
    daemon = await pollerd("run", "-c", str(config))
    await wait_for(lambda: len(receiver.requests) >= 2, timeout=30)
    os.kill(daemon.pid, signal.SIGKILL)
    await daemon.wait()
    receiver.answers = []
    once = await pollerd("once", "-c", str(config))
    _, stderr = await once.communicate()
    assert once.returncode == 0, stderr.decode()
    assert receiver.requests[-1].body == b'{"v": 1}'
    assert len({r.headers["Idempotency-Key"] for r in receiver.requests}) == 1
    assert pending_deliveries(tmp_path / "state") == 0


async def test_sigterm_stops_the_daemon_cleanly(upstream: Upstream, tmp_path: Path) -> None:
    """SIGTERM: stop scheduling, drain, exit 0."""
    upstream.file("/a.json", b"{}")
    out = tmp_path / "out"
    daemon = await pollerd("run", "-c", str(write_config(tmp_path, upstream.url("/a.json"), out)))
    await wait_for((out / "files" / "a.json" / "latest.json").exists, timeout=30)
    daemon.send_signal(signal.SIGTERM)
    _, stderr = await asyncio.wait_for(daemon.communicate(), timeout=30)
    assert daemon.returncode == 0, stderr.decode()
    assert b'"stopping"' in stderr


async def test_kill_9_mid_backlog_repeats_only_a_tenth_of_a_second_of_deliveries(
    upstream: Upstream, tmp_path: Path
) -> None:
    """200 events waiting for a receiver that takes 20 ms each; kill -9 after about 100: the
    restart sends again only what was delivered but not yet acknowledged, which is at most
    100 ms of deliveries (here about 5), never the 50 of a whole batch."""
    keys: list[str] = []
    down = True

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        if down:
            return web.Response(status=503)
        await asyncio.sleep(0.02)
        keys.append(request.headers["Idempotency-Key"])
        return web.Response(text="ok")

    server, hook = await serve_receiver(handle)
    urls = [upstream.file(f"/r{i:03}.json", f'{{"r": {i}}}'.encode()) for i in range(200)]
    sink = webhook_sink(hook, 'retry_base = "10ms"\nretry_max = "20ms"\n', name="out")
    config = config_file(
        tmp_path, urls, daemon='metrics = "off"\nlog_format = "json"', source='interval = "1m"', sink=sink
    )
    try:
        once = await pollerd("once", "-c", str(config))
        await once.communicate()
        assert pending_deliveries(tmp_path / "state") == 200
        down = False
        daemon = await pollerd("run", "-c", str(config))
        await wait_for(lambda: len(keys) >= 100, timeout=60)
        os.kill(daemon.pid, signal.SIGKILL)
        await daemon.wait()
        delivered_before = len(keys)
        again = await pollerd("once", "-c", str(config))
        _, stderr = await again.communicate()
        assert again.returncode == 0, stderr.decode()[-2000:]
    finally:
        await server.close()
    repeats = len(keys) - len(set(keys))
    assert len(set(keys)) == 200
    assert repeats <= 8, (repeats, delivered_before)
