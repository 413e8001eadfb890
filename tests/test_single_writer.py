"""One writer per state: a second writer is refused, reports never write, sequences never repeat."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
from pathlib import Path

import pytest

from pollerd.cli import main
from pollerd.config import load_config
from pollerd.core.model import Event
from pollerd.store.sqlite import queries
from pollerd.store.sqlite.store import reading
from tests.conftest import (
    ConfigFactory,
    Receiver,
    Upstream,
    opened,
    stdout_events,
    wait_for,
    webhook_sink,
)
from tests.test_crash import pending_deliveries, pollerd, write_config


async def test_a_second_writer_exits_2_naming_the_holder(
    upstream: Upstream, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`once` (or `redeliver` that cannot hand over) beside `run` is refused with the run's pid;
    the running daemon is untouched and the lock goes with it."""
    upstream.file("/a.json", b'{"v": 1}')
    config = write_config(tmp_path, upstream.url("/a.json"), tmp_path / "out")
    daemon = await pollerd("run", "-c", str(config))
    try:
        await wait_for((tmp_path / "out/files/a.json/latest.json").exists, timeout=30)
        capsys.readouterr()  # what the test's own loop logged so far
        assert await cli("once", "-c", str(config)) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1, err
        assert f"pid {daemon.pid}" in err[0] and "in use by another pollerd" in err[0]
        assert daemon.returncode is None
    finally:
        daemon.send_signal(signal.SIGTERM)
        await daemon.wait()
    assert await cli("once", "-c", str(config)) == 0  # the lock went with the process


async def test_kill_9_leaves_no_lock_behind(upstream: Upstream, tmp_path: Path) -> None:
    """The lock is the kernel's: a killed holder's lock file does not block the next writer."""
    upstream.file("/a.json", b'{"v": 1}')
    config = write_config(tmp_path, upstream.url("/a.json"), tmp_path / "out")
    daemon = await pollerd("run", "-c", str(config))
    await wait_for((tmp_path / "state/pollerd.lock").exists, timeout=30)
    await wait_for(lambda: (tmp_path / "state/pollerd.lock").read_text().strip() != "", timeout=30)
    os.kill(daemon.pid, signal.SIGKILL)
    await daemon.wait()
    once = await pollerd("once", "-c", str(config))
    _, stderr = await once.communicate()
    assert once.returncode == 0, stderr.decode()[-3000:]


def test_reports_never_create_a_state(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`status` and `deliveries` on a state that does not exist say so and create nothing."""
    config = write_config(tmp_path, "http://127.0.0.1:9/a.json", tmp_path / "out")
    assert main(["status", "-c", str(config)]) == 0
    assert main(["deliveries", "-c", str(config)]) == 0
    assert main(["status", "-c", str(config), "--json"]) == 0
    assert "no state yet" in capsys.readouterr().out
    assert not (tmp_path / "state").exists()


async def test_reports_open_the_state_read_only(upstream: Upstream, tmp_path: Path) -> None:
    """The reports' connection cannot write, and reading does not need the lock."""
    upstream.file("/a.json", b'{"v": 1}')
    config_path = write_config(tmp_path, upstream.url("/a.json"), tmp_path / "out")
    assert await cli("once", "-c", str(config_path)) == 0
    config = load_config(config_path)
    async with opened(config):  # a writer holds the lock
        with reading(config.daemon.state_dir) as db:
            assert db is not None
            assert queries.outbox_depth(db, "out") == 0
            with pytest.raises(sqlite3.OperationalError, match="readonly"):
                db.execute("DELETE FROM events")
        assert await cli("status", "-c", str(config_path)) == 0
        assert await cli("deliveries", "-c", str(config_path)) == 0


async def test_redeliver_beside_a_running_daemon_is_done_by_the_daemon(
    upstream: Upstream, receiver: Receiver, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The daemon holds the lock, so `redeliver` hands the request over; the event is sent again
    at once, with the same idempotency key."""
    receiver.answers = [(404, {})]
    upstream.file("/a.json", b'{"v": 1}')
    sink = webhook_sink(receiver.url, name="out")
    config = write_config(tmp_path, upstream.url("/a.json"), tmp_path / "out", sink)
    daemon = await pollerd("run", "-c", str(config))
    try:
        await wait_for(lambda: len(receiver.requests) == 1, timeout=30)
        event_id = receiver.requests[0].headers["X-Pollerd-Event-Id"]
        await wait_for(lambda: _dead(tmp_path) == 1, timeout=30)
        assert await cli("redeliver", "-c", str(config), event_id) == 0
        assert "1 delivery of event" in capsys.readouterr().out
        await wait_for(lambda: len(receiver.requests) == 2, timeout=30)
        assert receiver.requests[1].headers["Idempotency-Key"] == event_id
        assert await cli("redeliver", "-c", str(config), "--dead") == 1
    finally:
        daemon.send_signal(signal.SIGTERM)
        await daemon.wait()
    assert pending_deliveries(tmp_path / "state") == 0


async def cli(*args: str) -> int:
    """``pollerd ARGS`` in this process (in a thread: it runs its own event loop)."""
    return await asyncio.to_thread(main, list(args))


def _dead(tmp_path: Path) -> int:
    with sqlite3.connect(tmp_path / "state/pollerd.sqlite3", timeout=5) as db:
        return int(db.execute("SELECT COUNT(*) FROM deliveries WHERE status='dead'").fetchone()[0])


async def test_an_outbox_ahead_of_the_state_is_repaired_not_wedged(
    upstream: Upstream, make_config: ConfigFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A state left inconsistent by an older version (an event at the sequence the resource's
    state would use next, with other bytes) does not wedge the resource: the next change takes
    the next free sequence, once, and polling goes on."""
    url = upstream.file("/a.json", b'{"v": 1}')
    config = make_config([url])
    async with opened(config) as daemon:
        await daemon.run_once()
    stray = Event.make_id("files", "a.json", 2, "0" * 64)
    with sqlite3.connect(tmp_path / "state/pollerd.sqlite3") as db:
        body = json.loads(db.execute("SELECT body FROM events").fetchone()[0])
        body.update(event_id=stray, sequence=2, sha256="0" * 64)
        db.execute(
            "INSERT INTO events (event_id, source, resource, sequence, sha256, body,"
            " extension, created_at, size) VALUES (?, 'files', 'a.json', 2, ?, ?, 'json',"
            " 0, 1)",
            (stray, "0" * 64, json.dumps(body)),
        )
    upstream.host.publish("/a.json", b'{"v": 2}')
    async with opened(config) as daemon:
        assert await daemon.run_once()
        upstream.host.publish("/a.json", b'{"v": 3}')
        assert await daemon.run_once()
    sequences = [e["sequence"] for e in stdout_events(capsys.readouterr().out)]
    assert sequences == [1, 3, 4]
    with sqlite3.connect(tmp_path / "state/pollerd.sqlite3") as db:
        rows = db.execute("SELECT sequence FROM events ORDER BY sequence").fetchall()
    assert [r[0] for r in rows] == [1, 2, 3, 4]
