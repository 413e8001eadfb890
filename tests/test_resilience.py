"""Discovery memory, forced re-discovery, concurrency bounds, and the status command."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from pollerd.cli import main
from pollerd.config import HttpSourceConfig
from pollerd.core.hosts import ANY_HOST
from pollerd.core.model import Resource
from pollerd.polling.file_poller import SourcePoller
from pollerd.polling.source import DiscoveryFailed
from pollerd.sim import Fault
from pollerd.sources import SOURCE_KINDS, SourceKind
from tests.conftest import ConfigFactory, Upstream, config_file, opened, sample


class DownApi:
    """A source whose discovery API is down."""

    name = "files"
    discovery_interval: float | None = 1.0
    policy = ANY_HOST

    async def discover(self, known: list[Resource]) -> list[Resource]:
        """Always fails."""
        raise DiscoveryFailed("API answered 503")

    def details(self, document: Any) -> dict[str, Any] | None:
        """Nothing."""
        return None


async def test_restart_during_api_outage_polls_the_last_known_urls(
    upstream: Upstream, make_config: ConfigFactory
) -> None:
    """With discovery failing from the start, the persisted discovery is polled."""
    upstream.file("/a.json", b'{"v": 1}')
    config = make_config([upstream.url("/a.json")])
    async with opened(config) as daemon:
        assert await daemon.run_once()
    upstream.host.publish("/a.json", b'{"v": 2}')
    down = SourceKind(HttpSourceConfig, lambda c, ctx: SourcePoller(c, DownApi(), ctx))
    async with opened(config, {**SOURCE_KINDS, "http": down}) as daemon:
        assert not await daemon.run_once()  # the discovery failure is reported...
        assert sample(daemon, "pollerd_changes_total", source="files") == 1  # ...yet polled
        assert sample(daemon, "pollerd_discoveries_total", source="files", outcome="error") == 1


async def test_a_resource_that_keeps_failing_forces_rediscovery(
    upstream: Upstream, make_config: ConfigFactory
) -> None:
    """After rediscover_after consecutive failures the source is asked again, at once."""
    upstream.file("/a.json", b"{}")
    upstream.host.inject("*", Fault("status", status=502, count=-1))
    config = make_config([upstream.url("/a.json")], rediscover_after=2, backoff_base="1ms", backoff_max="1ms")
    async with opened(config) as daemon:
        await daemon.run_once()
        assert sample(daemon, "pollerd_rediscoveries_total", source="files") == 0
        await daemon.run_once()
        assert sample(daemon, "pollerd_rediscoveries_total", source="files") == 1
        assert sample(daemon, "pollerd_discoveries_total", source="files", outcome="ok") == 2


async def test_requests_per_host_are_bounded(
    upstream: Upstream, make_config: ConfigFactory, tmp_path: Path
) -> None:
    """Eight slow files on one host: never more than max_per_host requests at once."""
    urls = []
    for n in range(8):
        upstream.host.add(f"/{n}.json")
        upstream.host.publish(f"/{n}.json", b"{}")
        upstream.host.inject(f"/{n}.json", Fault("slow", delay=0.2))
        urls.append(upstream.url(f"/{n}.json"))
    config = make_config(urls)
    config = config.model_copy(update={"daemon": config.daemon.model_copy(update={"max_per_host": 2})})
    async with opened(config) as daemon:
        assert await daemon.run_once()
    assert upstream.host.most_in_flight == 2


async def test_status_shows_every_resource(
    upstream: Upstream,
    make_config: ConfigFactory,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`pollerd status --json` reports strategy, validators, sequence and pending deliveries."""
    upstream.host.add("/a.json", head_allowed=False)
    upstream.host.publish("/a.json", b"{}")
    config = make_config([upstream.url("/a.json")])
    async with opened(config) as daemon:
        assert await daemon.run_once()
    path = config_file(tmp_path, [upstream.url("/a.json")], daemon="")
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["status", "-c", str(path), "--json"]) == 0  # its own loop
    status = json.loads(capsys.readouterr().out)
    [row] = status["sources"]["files"]
    assert row["strategy"] == "conditional"
    assert row["sequence"] == 1
    assert row["etag"] == upstream.etag("/a.json")
    assert status["sinks"] == {"out": {"pending": 0}}
