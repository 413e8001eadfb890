"""Every stall is seen: a hung store, a full disk with nothing to deliver, a discovery that never
worked or answers poison, error bodies that break their reader, commits lost with a WAL file."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp import web

from pollerd.config import parse_config
from pollerd.daemon.app import Daemon
from pollerd.sim import Fault, SimServer
from pollerd.sim.night import PRIMARY_DOWN, ElectionNight
from pollerd.store.sqlite import queries
from pollerd.store.sqlite.store import SqliteStore
from tests.conftest import (
    ConfigFactory,
    Upstream,
    ap_source,
    config_file,
    dc_source,
    file_poller,
    fso_source,
    opened,
    sample,
    wait_for,
    wait_out_backoff,
)
from tests.postgres import Cluster
from tests.test_crash import pollerd
from tests.test_operations import get, running
from tests.test_tasks import fetch, free_port, until_answers


@contextmanager
def frozen(cluster: Cluster) -> Iterator[None]:
    """The whole PostgreSQL cluster stopped with SIGSTOP (the postmaster and every backend), as
    a hung server or a frozen VM is; SIGCONT afterwards, whatever happened."""
    postmaster = int((cluster.data / "postmaster.pid").read_text().split()[0])
    found = subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True, text=True, check=False)
    children = [int(pid) for pid in found.stdout.split()]
    pids = [postmaster, *children]
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)


async def test_a_frozen_database_fails_the_attempt_at_the_sink_timeout(
    postgres_cluster: Cluster, postgres_url: str, upstream: Upstream, tmp_path: Path
) -> None:
    """PostgreSQL frozen under a ``postgres`` sink with ``timeout = "1s"``: the delivery attempt
    fails when the second is up (it is retried, its error says so), the outbox still holds the
    version, and once the server runs again the version is delivered."""
    url = upstream.file("/a.json", b'{"v": 1}')
    config = parse_config(
        {
            "daemon": {"state_dir": str(tmp_path / "state"), "metrics": "off"},
            "sources": [{"name": "files", "kind": "http", "urls": [url], "sinks": ["db"]}],
            "sinks": [
                {"name": "db", "kind": "postgres", "url": postgres_url, "timeout": "1s", "retry_base": "50ms"}
            ],
        }
    )
    async with opened(config) as daemon:
        assert await daemon.run_once()
        upstream.host.publish("/a.json", b'{"v": 2}')
        with frozen(postgres_cluster):
            started = time.monotonic()
            clean = await asyncio.wait_for(daemon.run_once(), timeout=30)
            took = time.monotonic() - started
            counts = await daemon.store.delivery_counts("db")
            assert isinstance(daemon.store, SqliteStore)
            pending = await daemon.store.run(queries.list_deliveries, "db", ("pending",), 10)
        assert not clean and took < 15, took
        assert counts["pending"] == 1
        assert "timeout (1 s)" in (pending[0].last_error or ""), pending[0].last_error
        assert sample(daemon, "pollerd_deliveries_total", sink="db", outcome="failed") >= 1
        for _ in range(50):
            if await daemon.run_once():
                break
            await asyncio.sleep(0.2)
        assert (await daemon.store.delivery_counts("db"))["pending"] == 0


async def test_a_hung_object_store_and_the_depth_measured_from_the_state(
    upstream: Upstream, tmp_path: Path
) -> None:
    """An S3 endpoint that accepts and never answers, under an ``objectstore`` sink with
    ``timeout = "1s"``: attempts fail and are retried (logged, counted) instead of waiting for
    ever, and ``pollerd_outbox_depth`` follows the versions piling up, read from the state while
    the sink is stuck."""
    hanging = asyncio.Event()

    async def never(_request: web.Request) -> web.Response:
        await hanging.wait()
        return web.Response(status=500)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", never)
    server = SimServer()
    endpoint = await server.serve(app)
    url = upstream.file("/a.json", b'{"v": 0}')
    os.environ["POLLERD_TEST_S3_KEY"] = "test-access-key-1"
    os.environ["POLLERD_TEST_S3_SECRET"] = "test-secret-key-1"
    config = parse_config(
        {
            "daemon": {"state_dir": str(tmp_path / "state"), "metrics": "127.0.0.1:0"},
            "sources": [
                {"name": "files", "kind": "http", "urls": [url], "interval": "200ms", "sinks": ["s3"]}
            ],
            "sinks": [
                {
                    "name": "s3",
                    "kind": "objectstore",
                    "bucket": "night",
                    "endpoint": endpoint,
                    "region": "us-east-1",
                    "access_key_id": "${POLLERD_TEST_S3_KEY}",
                    "secret_access_key": "${POLLERD_TEST_S3_SECRET}",
                    "timeout": "1s",
                    "retry_base": "100ms",
                    "retry_max": "500ms",
                }
            ],
        }
    )
    try:
        async with running(config) as (daemon, _base):
            await wait_for(
                lambda: sample(daemon, "pollerd_deliveries_total", sink="s3", outcome="failed") >= 2, 30
            )
            for version in range(1, 6):
                upstream.host.publish("/a.json", json.dumps({"v": version}).encode())
                await wait_for(functools.partial(_changed, daemon, version + 1), 20)
            await wait_for(lambda: sample(daemon, "pollerd_outbox_depth", sink="s3") >= 5, timeout=30)
    finally:
        hanging.set()
        await server.close()


async def test_a_full_disk_with_nothing_to_deliver_keeps_health_red(
    upstream: Upstream, tmp_path: Path
) -> None:
    """The daemon's files capped (RLIMIT_FSIZE: writes fail as on a full disk) while a new version
    waits to be committed and no delivery is pending: /healthz answers 503 at every check until
    the disk has room again, however many cycles write nothing while the resource waits out its
    backoff; then the version is committed and /healthz is 200 again. No traceback is logged."""
    upstream.file("/a.json", b'{"v": 1}')
    port = free_port()
    config = config_file(
        tmp_path,
        [upstream.url("/a.json")],
        daemon=f'metrics = "127.0.0.1:{port}"\nlog_format = "json"',
        source='interval = "200ms"\nbackoff_base = "300ms"\nbackoff_max = "600ms"',
    )
    daemon = await pollerd("run", "-c", str(config))
    base = f"http://127.0.0.1:{port}"
    out = tmp_path / "out" / "files"
    try:
        await wait_for(lambda: out.exists() and any(out.rglob("*.json")), timeout=30)
        resource.prlimit(daemon.pid, resource.RLIMIT_FSIZE, (1, resource.RLIM_INFINITY))
        upstream.host.publish("/a.json", b'{"v": 2}' + b" " * 4096)
        assert await until_answers(f"{base}/healthz", 503, tries=200) == 503
        answers = []
        for _ in range(24):
            answers.append((await fetch(f"{base}/healthz"))[0])
            await asyncio.sleep(0.25)
        assert answers == [503] * 24, answers
        resource.prlimit(daemon.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        assert await until_answers(f"{base}/healthz", 200) == 200
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(daemon.communicate(), timeout=60)
    log = stderr.decode()
    assert "poll crashed" not in log and "Traceback" not in log, log[-2000:]
    assert '"task working again"' in log


async def test_a_discovery_that_never_worked_is_said_everywhere(tmp_path: Path) -> None:
    """CKAN unreachable from the start: the status page names the source failing with the
    discovery's error, ``pollerd status`` says it, /readyz (past the grace) and
    ``pollerd healthcheck`` fail, naming the source and the reason."""
    dead_api = f"http://127.0.0.1:{free_port()}/api/3/action"
    port = free_port()
    raw = {
        "daemon": {
            "state_dir": str(tmp_path / "state"),
            "metrics": f"127.0.0.1:{port}",
            "startup_grace": "0s",
        },
        "sources": [fso_source(dead_api, ["out"], interval="200ms", backoff_max="300ms")],
        "sinks": [{"name": "out", "kind": "filesystem", "root": str(tmp_path / "out")}],
    }
    config = parse_config(raw)
    path = tmp_path / "pollerd.toml"
    path.write_text(_toml(raw))
    async with running(config) as (daemon, base):
        await wait_for(lambda: daemon.pollers["wahlen"].status().discovery_error is not None, timeout=20)
        status, page = await get(f"{base}/status")
        ready, said = await get(f"{base}/readyz")
        check_code, _, check_err = await _command("healthcheck", "-c", str(path))
        _, report_out, _ = await _command("status", "-c", str(path))
    assert status == 200 and "its API fails since" in page and "cannot connect" in page.lower()
    assert 'data-source="wahlen"' in page and ">failing<" in page
    assert ready == 503 and "wahlen (" in said and "never discovered or answered" in said, said
    assert check_code == 1 and b"/readyz 503" in check_err, check_err
    assert b"DISCOVERY FAILING" in report_out, report_out


async def _command(*args: str) -> tuple[int | None, bytes, bytes]:
    """This checkout's command line in a process of its own: exit code, stdout, stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pollerd", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await process.communicate()
    return process.returncode, out, err


def _toml(raw: Mapping[str, object]) -> str:
    """The tests' small configs as TOML (tables of strings and lists only)."""
    lines = []
    for table, body in raw.items():
        rows = body if isinstance(body, list) else [body]
        for row in rows:
            lines.append(f"[[{table}]]" if isinstance(body, list) else f"[{table}]")
            assert isinstance(row, dict)
            lines += [f"{key} = {json.dumps(value)}" for key, value in row.items()]
    return "\n".join(lines) + "\n"


async def test_a_poisoned_discovery_answer_is_refused_and_the_known_files_polled(
    night: ElectionNight, fso_config: ConfigFactory
) -> None:
    """``package_show`` answering JSON nested 100,000 deep after a good discovery: the answer is
    refused and counted (``pollerd_discoveries_total{outcome="error"}``), its reason kept for the
    status, and the known files go on being polled: the night's next versions are caught."""
    night.advance_to(PRIMARY_DOWN - timedelta(hours=3))
    async with opened(fso_config(night.api_url, discovery_interval="1ms")) as daemon:
        poller = file_poller(daemon, "nrw")
        await daemon.run_once()
        known = len(poller.resources)
        assert known > 0
        night.ckan.inject("*", Fault("body", count=-1, status=200, body=b"[" * 100_000 + b"]" * 100_000))
        changes = poller.status().changes
        for minutes in range(10, 70, 10):
            night.advance_to(PRIMARY_DOWN - timedelta(hours=3) + timedelta(minutes=minutes))
            await wait_out_backoff(daemon)
            await daemon.run_once()
        assert len(poller.resources) == known
        assert poller.status().changes > changes
        assert "not JSON" in (poller.status().discovery_error or "")
        assert sample(daemon, "pollerd_discoveries_total", source="nrw", outcome="error") >= 1
        night.ckan.clear_faults()


@pytest.mark.parametrize("kind", ["ap", "dc"])
async def test_error_bodies_that_break_a_json_reader_are_failures_with_backoff(
    kind: str, tmp_path: Path
) -> None:
    """An AP or Democracy Club upstream answering 500 with a body of 4,096 ``[``: the failure is
    recorded (no RecursionError), so the source backs off instead of asking every interval."""
    asked: list[float] = []

    async def poisoned(_request: web.Request) -> web.Response:
        asked.append(time.monotonic())
        return web.Response(status=500, body=b"[" * 4096, content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", poisoned)
    server = SimServer()
    base = await server.serve(app)
    table = (
        ap_source(base + "/v2", ["out"], interval="100ms", backoff_base="2s", queries=[{"name": "all"}])
        if kind == "ap"
        else dc_source(base + "/api/v1", ["out"], interval="100ms", backoff_base="2s", postcodes=["AA12AA"])
    )
    config = parse_config(
        {
            "daemon": {"state_dir": str(tmp_path / "state"), "metrics": "off"},
            "sources": [table],
            "sinks": [{"name": "out", "kind": "filesystem", "root": str(tmp_path / "out")}],
        }
    )
    try:
        async with opened(config) as daemon:
            poller = daemon.pollers[table["name"]]
            for _ in range(8):
                await poller.poll()
                await asyncio.sleep(0.1)
            states = list(poller.states.values())
    finally:
        await server.close()
    assert states and all(s.failures >= 1 and s.last_error for s in states), states
    assert len(asked) <= 3, f"asked {len(asked)} times in 8 cycles: no backoff"


async def test_commits_lost_with_the_wal_are_announced_as_state_lost(
    upstream: Upstream, tmp_path: Path
) -> None:
    """pollerd killed with ``kill -9`` after committing versions that are still only in the WAL
    file; the WAL removed; at the next start the log says STATE LOST with the number of commits
    lost, and /status shows it."""
    url = upstream.file("/a.json", b'{"v": 0}')
    config = config_file(
        tmp_path, [url], daemon='metrics = "off"\nlog_format = "json"', source='interval = "100ms"'
    )
    state = tmp_path / "state" / "pollerd.sqlite3"
    daemon = await pollerd("run", "-c", str(config))
    try:
        for version in range(1, 4):
            await wait_for(functools.partial(_committed, state, version), timeout=30)
            upstream.host.publish("/a.json", json.dumps({"v": version}).encode())
        await wait_for(lambda: _events(state) >= 4, timeout=30)
    finally:
        daemon.send_signal(signal.SIGKILL)
        await daemon.wait()
    wal = state.with_name(state.name + "-wal")
    assert wal.exists() and wal.stat().st_size > 0
    wal.unlink()
    state.with_name(state.name + "-shm").unlink(missing_ok=True)
    port = free_port()
    restart = config_file(
        tmp_path,
        [url],
        daemon=f'metrics = "127.0.0.1:{port}"\nlog_format = "json"',
        source='interval = "100ms"',
    )
    again = await pollerd("run", "-c", str(restart))
    try:
        page = ""
        for _ in range(200):
            status, page = await fetch(f"http://127.0.0.1:{port}/status")
            if status == 200:
                break
            await asyncio.sleep(0.1)
    finally:
        again.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(again.communicate(), timeout=60)
    log = stderr.decode()
    assert "STATE LOST" in log and "commits lost" in log, log[-2000:]
    assert "the state was lost at start" in page and "commits lost" in page


def _changed(daemon: Daemon, changes: int) -> bool:
    """Whether the daemon has committed that many changes of its source ``files``."""
    return sample(daemon, "pollerd_changes_total", source="files") >= changes


def _committed(state: Path, events: int) -> bool:
    """Whether the state holds that many events."""
    return _events(state) >= events


def _events(state: Path) -> int:
    """Events committed so far (read beside the running daemon)."""
    if not state.exists():
        return 0
    with sqlite3.connect(f"{state.as_uri()}?mode=ro", uri=True) as db:
        try:
            return int(db.execute("SELECT COUNT(*) FROM events").fetchone()[0])
        except sqlite3.OperationalError:
            return 0
