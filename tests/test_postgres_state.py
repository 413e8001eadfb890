"""The daemon on PostgreSQL (``[daemon] database``): the same pipeline, its state and payloads in
the database, so another machine continues where it stopped; one writer at a time (until leases
share the sources between replicas); the command line's reports and redelivery read it too."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from pollerd.cli import main
from pollerd.config import ConfigError, load_config, parse_config
from pollerd.daemon.app import Daemon
from pollerd.daemon.state_open import StartupError
from tests.conftest import Upstream, config_file, opened, sample, versions_on_disk


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
        assert daemon.pollers["files"].states["a.json"].sequence == 2
    [version] = versions_on_disk(tmp_path / "two" / "out", "files", "a.json")
    assert json.loads(version.read_bytes()) == {"v": 2}
    assert not (tmp_path / "two" / "state" / "pollerd.sqlite3").exists()


async def test_one_writer_per_database(upstream: Upstream, postgres_url: str, tmp_path: Path) -> None:
    """A second daemon on the same database refuses to start, naming the first; once the first
    is closed it starts."""
    url = upstream.file("/a.json", b"{}")
    async with opened(load_config(pg_config(tmp_path, "one", [url], postgres_url))):
        other = Daemon(load_config(pg_config(tmp_path, "two", [url], postgres_url)))
        with pytest.raises(StartupError, match=r"daemon\.database: the database is in use by .* pid"):
            await other.open()
        await other.close()
    async with opened(load_config(pg_config(tmp_path, "two", [url], postgres_url))) as daemon:
        assert await daemon.run_once()


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
