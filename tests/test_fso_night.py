"""The FSO source against the simulated election night, end to end: the simulator knows the truth."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pollerd.core.model import Strategy
from pollerd.daemon.app import Daemon
from pollerd.sim import Fault
from pollerd.sim.night import ADDED, ADDED_AT, FILES, PACKAGE, PRIMARY_DOWN, TO_DAM, ElectionNight
from tests.conftest import (
    ConfigFactory,
    opened,
    sample,
    stdout_events,
    versions_on_disk,
    wait_out_backoff,
)

BOM = b"\xef\xbb\xbf"


@asynccontextmanager
async def caught_up(
    night: ElectionNight,
    fso_config: ConfigFactory,
    at: datetime,
    capsys: pytest.CaptureFixture[str],
    **source: Any,
) -> AsyncIterator[Daemon]:
    """The night played up to ``at``, a daemon that has seen it, and its output cleared."""
    night.advance_to(at)
    async with opened(fso_config(night.api_url, **source)) as daemon:
        await daemon.run_once()
        capsys.readouterr()
        yield daemon


def by_resource(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Events grouped by resource, in the order they were printed."""
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        grouped[event["resource"]].append(event)
    return grouped


async def test_every_version_of_the_night_is_delivered_once_in_order(
    night: ElectionNight,
    fso_config: ConfigFactory,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A cycle after every moment of the night: S3, outage, fallback, new resource, DAM."""
    config = fso_config(night.api_url, discovery_interval="1ms")
    async with opened(config) as daemon:
        await daemon.run_once()
        while not night.finished:
            night.step()
            await wait_out_backoff(daemon)
            await daemon.run_once()
        await wait_out_backoff(daemon)
        await daemon.run_once()
        poller = daemon.pollers["nrw"]
        events = by_resource(stdout_events(capsys.readouterr().out))

        assert set(events) == set(night.truth) == {f.file_name for f in (*FILES, ADDED)}
        for name, versions in night.truth.items():
            delivered = events[name]
            assert [e["sha256"] for e in delivered] == versions, name
            assert [e["sequence"] for e in delivered] == list(range(1, len(versions) + 1))
            assert len({e["event_id"] for e in delivered}) == len(delivered)
        assert sample(daemon, "pollerd_url_switches_total", source="nrw") == 4 + 5
        assert sample(daemon, "pollerd_changes_total", source="nrw") == night.versions_published()
        # on the DAM (no Last-Modified, no ETag) auto has fallen back to hashing by itself
        assert {s.learned_strategy for s in poller.states.values()} == {Strategy.ALWAYS}
        assert not night.dam.requests("HEAD")[-1].headers.get("If-None-Match")

    parties = events["sd-t-17.02-NRW2023-parteien.json"]
    assert parties[0]["size"] > 0  # empty until noon: not published yet, not a version
    moved = [e for e in parties if e["url_switch"]]
    assert [urlpath(e["url_switch"]["to"]) for e in moved] == [
        "/ogd-fallback/v4/ogd/sd-t-17.02-NRW2023-parteien.json",
        "/hub/api/dam/assets/27245501/master",
    ]
    assert urlpath(moved[1]["url_switch"]["from"]).startswith("/ogd-fallback/")
    for event in parties[1:]:
        details = event["details"]
        local = datetime.fromisoformat(details["timestamp_local"])
        utc = datetime.fromisoformat(details["timestamp"].replace("Z", "+00:00"))
        assert local - utc.replace(tzinfo=None) == timedelta(hours=2)  # CEST on 22 Oct 2023
        assert details["stand"]["gemeinden_total"] == len(night.content.communes)
    elected = events[ADDED.file_name]
    assert datetime.fromisoformat(elected[0]["details"]["timestamp"].replace("Z", "+00:00")) == ADDED_AT
    assert elected[0]["upstream_id"] == ADDED.ckan_id

    stored = versions_on_disk(tmp_path / "out", "nrw", "sd-t-17.02-NRW2023-kandidierende.json")
    assert len(stored) == len(night.truth["sd-t-17.02-NRW2023-kandidierende.json"])
    assert all(p.read_bytes().startswith(BOM) for p in stored)  # delivered as served


def urlpath(url: str) -> str:
    """The path of a URL."""
    return "/" + url.split("/", 3)[3]


async def test_identical_bytes_at_the_new_url_are_not_a_change(
    night: ElectionNight, fso_config: ConfigFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """A switch to the fallback host with no new version in between delivers nothing, and
    downloads nothing: the fallback's ETags are the MD5s of the bytes held (as S3's are)."""
    async with caught_up(night, fso_config, PRIMARY_DOWN - timedelta(seconds=1), capsys) as daemon:
        assert sample(daemon, "pollerd_changes_total", source="nrw") == len(FILES)
        night.fail_primary()
        night.move_to("fallback", PRIMARY_DOWN)
        assert await daemon.run_once()  # each 503 forces a discovery; the new URL is used at once
        assert sample(daemon, "pollerd_polls_total", source="nrw", outcome="error") == len(FILES)
        assert stdout_events(capsys.readouterr().out) == []
        assert sample(daemon, "pollerd_url_switches_total", source="nrw") == len(FILES)
        assert sample(daemon, "pollerd_validator_only_changes_total", source="nrw") == len(FILES)
        assert night.fallback.requests("GET") == []
        assert len(night.fallback.requests("HEAD")) == len(FILES)
        assert await daemon.run_once()  # and from then on the fallback's validators answer
        assert night.fallback.requests("GET") == []


async def test_a_stale_old_host_is_left_when_the_package_moves(
    night: ElectionNight, fso_config: ConfigFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """After the DAM switch the fallback still answers 200 with its old files: the periodic
    discovery finds the move, and the versions published on the DAM are delivered."""
    async with caught_up(
        night, fso_config, TO_DAM - timedelta(seconds=1), capsys, discovery_interval="300ms"
    ) as daemon:
        night.advance_to(TO_DAM + timedelta(hours=2))
        await daemon.run_once()  # discovery not due yet: the stale fallback looks unchanged
        assert stdout_events(capsys.readouterr().out) == []
        await asyncio.sleep(0.35)
        await daemon.run_once()
        delivered = by_resource(stdout_events(capsys.readouterr().out))
    assert delivered  # the trace has versions at 23:19 and 23:20
    for name, events in delivered.items():
        assert events[-1]["sha256"] == night.truth[name][-1]
        assert "/hub/api/dam/" in events[-1]["url"]


async def test_a_403_on_a_file_is_an_error_and_triggers_rediscovery(
    night: ElectionNight, fso_config: ConfigFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """403 without Last-Modified is never 'unchanged': counted, re-discovered, retried."""
    async with caught_up(night, fso_config, PRIMARY_DOWN - timedelta(hours=2), capsys) as daemon:
        target = "/v4/ogd/sd-t-17.02-NRW2023-parteien.json"
        night.primary.inject(target, Fault("status", status=403, count=-1))
        night.advance_to(PRIMARY_DOWN - timedelta(minutes=30))
        ckan_before = len(night.ckan.log)
        assert not await daemon.run_once()
        assert sample(daemon, "pollerd_polls_total", source="nrw", outcome="error") >= 1
        assert sample(daemon, "pollerd_rediscoveries_total", source="nrw") >= 1
        assert len(night.ckan.log) > ckan_before
        assert "sd-t-17.02-NRW2023-parteien.json" not in {
            e["resource"] for e in stdout_events(capsys.readouterr().out)
        }
        night.primary.clear_faults()
        await wait_out_backoff(daemon)
        await daemon.run_once()
        events = stdout_events(capsys.readouterr().out)
        assert [
            e["sha256"] for e in events if e["resource"] == "sd-t-17.02-NRW2023-parteien.json"
        ] == night.truth["sd-t-17.02-NRW2023-parteien.json"][-1:]


async def test_ckan_down_does_not_stop_polling(
    night: ElectionNight, fso_config: ConfigFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """With package_show failing, the known URLs are polled and CKAN is retried with backoff."""
    async with caught_up(
        night, fso_config, PRIMARY_DOWN - timedelta(hours=3), capsys, discovery_interval="1ms"
    ) as daemon:
        night.ckan.inject("*", Fault("status", status=503, count=-1))
        ckan_before = len(night.ckan.log)
        cycles = 0
        for minutes in range(10, 70, 10):  # an hour of the night while CKAN is down
            night.advance_to(PRIMARY_DOWN - timedelta(hours=3) + timedelta(minutes=minutes))
            for _ in range(5):
                await daemon.run_once()
                cycles += 1
        outage_requests = len(night.ckan.log) - ckan_before
        assert 1 <= outage_requests < cycles / 2  # backoff, not a request every cycle
        delivered = by_resource(stdout_events(capsys.readouterr().out))
        for name, events in delivered.items():
            assert events[-1]["sha256"] == night.truth[name][-1]
        assert len(delivered) == len(FILES)
        night.ckan.clear_faults()
        await asyncio.sleep(0.15)  # the longest discovery backoff (backoff_max 100ms)
        assert await daemon.run_once()
        assert sample(daemon, "pollerd_discoveries_total", source="nrw", outcome="ok") >= 2


async def test_restart_downloads_nothing_new(
    night: ElectionNight, fso_config: ConfigFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """After a restart the stored validators answer: HEADs only, no GET, no event."""
    async with caught_up(night, fso_config, PRIMARY_DOWN - timedelta(hours=1), capsys):
        pass
    gets = len(night.primary.requests("GET"))
    async with opened(fso_config(night.api_url)) as daemon:
        assert await daemon.run_once()
    assert len(night.primary.requests("GET")) == gets
    assert stdout_events(capsys.readouterr().out) == []


async def test_a_resource_dropped_from_the_package_is_no_longer_polled(
    night: ElectionNight,
    fso_config: ConfigFactory,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """It is reported (log line, gauge) and its file is not requested any more."""
    dropped = FILES[3]
    async with caught_up(
        night, fso_config, PRIMARY_DOWN - timedelta(hours=1), capsys, discovery_interval="1ms"
    ) as daemon:
        assert sample(daemon, "pollerd_resources_watched", source="nrw") == len(FILES)
        night.ckan.remove(PACKAGE, dropped.ckan_id)
        assert await daemon.run_once()
        requests = len(night.primary.requests(path=f"/v4/ogd/{dropped.file_name}"))
        assert await daemon.run_once()
        assert len(night.primary.requests(path=f"/v4/ogd/{dropped.file_name}")) == requests
        assert sample(daemon, "pollerd_resources_watched", source="nrw") == len(FILES) - 1
    assert dropped.file_name in caplog.text and "no longer listed" in caplog.text
