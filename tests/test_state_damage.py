"""A damaged or lost state is said, never accepted silently."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest

from pollerd.config import load_config
from tests.conftest import Upstream, config_file, opened
from tests.test_operations import get, running
from tests.test_single_writer import cli


def twenty_resources(tmp_path: Path, upstream: Upstream) -> Path:
    """A config with twenty files, each polled once into state and ./out."""
    urls = [
        upstream.file(f"/r{i:02}.json", json.dumps({"r": i, "pad": "x" * 3000}).encode()) for i in range(20)
    ]
    return config_file(tmp_path, urls)


async def test_a_damaged_state_is_refused_with_a_clear_message(
    upstream: Upstream, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A page overwritten with junk: `once` and `run` refuse to start, saying what and how to
    go on, instead of failing resources one by one for ever."""
    config = twenty_resources(tmp_path, upstream)
    assert await cli("once", "-c", str(config)) == 0
    database = tmp_path / "state" / "pollerd.sqlite3"
    with sqlite3.connect(database) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
    with database.open("r+b") as file:
        file.seek(3 * page_size)
        file.write(b"\x0d" + b"\xff" * (page_size - 1))
    capsys.readouterr()
    assert await cli("once", "-c", str(config)) == 1
    err = capsys.readouterr().err
    assert "is damaged" in err and "restore it from a backup" in err and len(err.splitlines()) == 1


async def test_a_lost_state_is_said_loudly_and_latest_follows_the_newest(
    upstream: Upstream, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The state truncated to 0 bytes while ./out holds three versions: the start says STATE
    LOST, /status leads with it, and latest.json takes the new version although its sequence
    (1) is below the old one's (3)."""
    url = upstream.file("/a.json", b'{"v": 1}')
    config_path = config_file(tmp_path, [url], daemon='metrics = "127.0.0.1:0"')
    for version in (2, 3):
        assert await cli("once", "-c", str(config_path)) == 0
        upstream.host.publish("/a.json", f'{{"v": {version}}}'.encode())
    assert await cli("once", "-c", str(config_path)) == 0
    (tmp_path / "state" / "pollerd.sqlite3").write_bytes(b"")
    for leftover in (tmp_path / "state").glob("pollerd.sqlite3-*"):
        leftover.unlink()
    upstream.host.publish("/a.json", b'{"v": 4}')
    capsys.readouterr()
    async with running(load_config(config_path)) as (daemon, base):
        assert daemon.state_lost is not None
        _, page = await get(f"{base}/status")
        latest = tmp_path / "out" / "files" / "a.json" / "latest.json"
        for _ in range(200):
            if latest.read_bytes() == b'{"v": 4}':
                break
            await asyncio.sleep(0.05)
    assert latest.read_bytes() == b'{"v": 4}'
    assert "the state was lost at start" in page
    assert "STATE LOST" in capsys.readouterr().err


async def test_a_second_start_leaves_the_running_daemons_files_alone(
    upstream: Upstream, tmp_path: Path
) -> None:
    """A second daemon on the same state is refused before it touches anything (the first one's
    partial downloads in state/tmp stay)."""
    url = upstream.file("/a.json", b'{"v": 1}')
    config = load_config(config_file(tmp_path, [url]))
    async with opened(config):
        marker = tmp_path / "state" / "tmp" / "download-in-progress.part"
        marker.write_bytes(b"half a file")
        assert await cli("once", "-c", str(tmp_path / "pollerd.toml")) == 2
        assert marker.read_bytes() == b"half a file"
