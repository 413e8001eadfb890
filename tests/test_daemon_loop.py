"""The long-running daemon: scheduler, metrics endpoint, no stacked polls, failing sinks."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from pollerd.config import parse_config
from pollerd.sim import Fault
from pollerd.sim.night import ElectionNight
from tests.conftest import (
    ConfigFactory,
    Upstream,
    opened,
    sample,
    wait_for,
    wait_out_backoff,
)

METRIC_FAMILIES = [
    "pollerd_polls_total",
    "pollerd_http_requests_total",
    "pollerd_downloaded_bytes_total",
    "pollerd_changes_total",
    "pollerd_probe_duration_seconds",
    "pollerd_resources_in_backoff",
    "pollerd_rediscoveries_total",
    "pollerd_deliveries_total",
    "pollerd_outbox_depth",
    "pollerd_last_success_timestamp_seconds",
    "pollerd_fallback_active",
    "pollerd_fallback_switches_total",
    "pollerd_build_info",
]


async def test_metrics_endpoint_exposes_every_family(upstream: Upstream, tmp_path: Path) -> None:
    """/metrics serves the families the dashboards need, labelled by source and sink only."""
    upstream.file("/a.json", b"{}")
    config = parse_config(
        {
            "daemon": {"state_dir": str(tmp_path / "state"), "metrics": "127.0.0.1:0"},
            "sources": [
                {
                    "name": "files",
                    "kind": "http",
                    "urls": [upstream.url("/a.json")],
                    "interval": "200ms",
                    "sinks": ["out"],
                }
            ],
            "sinks": [{"name": "out", "kind": "filesystem", "root": str(tmp_path / "out")}],
        }
    )
    stop = asyncio.Event()
    async with opened(config) as daemon:
        runner = asyncio.create_task(daemon.run(stop))
        await wait_for(
            lambda: sample(daemon, "pollerd_deliveries_total", sink="out", outcome="delivered") == 1
        )
        assert daemon.server is not None
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{daemon.server.port}/metrics") as response,
        ):
            text = await response.text()
        stop.set()
        await runner
    for family in METRIC_FAMILIES:
        assert f"# TYPE {family} " in text, family
    assert 'pollerd_changes_total{source="files"} 1.0' in text
    assert 'pollerd_http_requests_total{method="GET",source="files",status_class="2xx"} 1.0' in text
    assert "_created" not in text
    assert "127.0.0.1" not in text  # no URLs in labels


async def test_overrunning_poll_is_skipped_not_stacked(
    night: ElectionNight, fso_config: ConfigFactory
) -> None:
    """A cycle slower than its interval (here its discovery: the CKAN API stalls) never runs
    twice at once; the skipped runs are counted."""
    config = fso_config(night.api_url, interval="100ms", discovery_interval="50ms")
    async with opened(config) as daemon:
        night.ckan.inject("*", Fault("slow", delay=0.6, count=3))
        stop = asyncio.Event()
        runner = asyncio.create_task(daemon.run(stop))
        await wait_for(lambda: sample(daemon, "pollerd_skipped_polls_total", source="nrw") >= 2)
        stop.set()
        await runner
    assert night.ckan.most_in_flight == 1


async def test_failing_sink_does_not_block_polling_or_other_sinks(upstream: Upstream, tmp_path: Path) -> None:
    """One sink fails for every event; the other sink gets every version, in order."""
    upstream.file("/a.json", b'{"v": 1}')
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where a folder should be")
    config = parse_config(
        {
            "daemon": {"state_dir": str(tmp_path / "state"), "metrics": "off"},
            "sources": [
                {
                    "name": "files",
                    "kind": "http",
                    "urls": [upstream.url("/a.json")],
                    "interval": "1s",
                    "sinks": ["good", "bad"],
                }
            ],
            "sinks": [
                {"name": "good", "kind": "filesystem", "root": str(tmp_path / "good")},
                {
                    "name": "bad",
                    "kind": "filesystem",
                    "root": str(blocked),
                    "retry_base": "50ms",
                    "retry_max": "50ms",
                },
            ],
        }
    )
    async with opened(config) as daemon:
        assert not await daemon.run_once()
        upstream.host.publish("/a.json", b'{"v": 2}')
        assert not await daemon.run_once()
        assert await daemon.store.outbox_depth("bad") == 2
        assert await daemon.store.outbox_depth("good") == 0
        blocked.unlink()
        await asyncio.sleep(0.1)
        assert await daemon.run_once()
        assert await daemon.store.outbox_depth("bad") == 0
    for root in ("good", "blocked"):
        events = sorted((tmp_path / root / "files" / "a.json").glob("2*.event.json"))
        assert len(events) == 2
    assert (blocked / "files" / "a.json" / "latest.json").read_bytes() == b'{"v": 2}'


async def test_payloads_are_removed_once_every_sink_has_them(
    upstream: Upstream, make_config: ConfigFactory, tmp_path: Path
) -> None:
    """Only the current version's payload stays in the state directory (with no redelivery
    window: ``redeliver_keep = "0s"``)."""
    upstream.host.add("/a.json")
    config = make_config([upstream.url("/a.json")])
    config = config.model_copy(update={"daemon": config.daemon.model_copy(update={"redeliver_keep": 0.0})})
    async with opened(config) as daemon:
        for n in range(3):
            upstream.host.publish("/a.json", f'{{"v": {n}}}'.encode())
            assert await daemon.run_once()
    blobs = [p for p in (tmp_path / "state" / "blobs").rglob("*") if p.is_file()]
    assert len(blobs) == 1


async def test_fallback_mirror_takes_over_and_hands_back(
    upstream: Upstream,
    second_upstream: Upstream,
    make_config: ConfigFactory,
    tmp_path: Path,
) -> None:
    """After N failures the mirror serves (same bytes: no event); the primary is taken back."""
    for host in (upstream.host, second_upstream.host):
        host.add("/feed/a.json")
        host.publish("/feed/a.json", b'{"v": 1}')
    config = make_config(
        [upstream.url("/feed/a.json")], fallback_urls=[second_upstream.base], fallback_after=2
    )
    async with opened(config) as daemon:
        assert await daemon.run_once()
        upstream.host.inject("*", Fault("reset", count=-1))  # the host drops every connection
        assert not await daemon.run_once()
        await wait_out_backoff(daemon)
        assert not await daemon.run_once()  # second failure: switch
        assert sample(daemon, "pollerd_fallback_active", source="files") == 1
        assert await daemon.run_once()  # served by the mirror
        assert second_upstream.host.requests(path="/feed/a.json")
        assert sample(daemon, "pollerd_changes_total", source="files") == 1
        upstream.host.clear_faults()
        assert await daemon.run_once()  # the primary answers the background probe
        assert sample(daemon, "pollerd_fallback_active", source="files") == 0
        second_upstream.host.log.clear()
        upstream.host.publish("/feed/a.json", b'{"v": 2}')
        assert await daemon.run_once()
    assert sample(daemon, "pollerd_fallback_switches_total", source="files", direction="to_fallback") == 1
    assert sample(daemon, "pollerd_fallback_switches_total", source="files", direction="to_primary") == 1
    assert sample(daemon, "pollerd_changes_total", source="files") == 2
    assert second_upstream.host.log == []
