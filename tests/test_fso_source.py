"""The fso source's parts: CKAN discovery, selection by name, host policy, User-Agent, details."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from pollerd.config import CKAN_PRESETS, ConfigError, FsoSourceConfig, parse_config
from pollerd.core.hosts import HostPolicy
from pollerd.core.model import Resource
from pollerd.daemon.app import DEFAULT_USER_AGENT
from pollerd.election.fso import swiss_local_to_utc
from pollerd.polling.answers import FetchFailure, Limits
from pollerd.polling.fetch import HttpClient, Terms
from pollerd.polling.source import DiscoveryFailed
from pollerd.polling.tally import SourceTally
from pollerd.sim import CkanApi, Fault, FileHost, PackageResource, SimServer
from pollerd.sim.night import ElectionNight
from pollerd.sources.fso import FsoSource, fso_policy
from pollerd.sources.fso_details import fso_details
from pollerd.telemetry.metrics import Metrics
from tests.conftest import ConfigFactory, file_poller, opened, sample, stdout_events

PACKAGE = "eidg-wahlen-2023"
FILES = {
    "a1": ("sd-t-17.02-NRW2023-parteien.json", "Nationalrat: Parteien", "JSON"),
    "b2": ("sd-t-17.02-NRW2023-wahlbeteiligung.json", "Nationalrat: Wahlbeteiligung", "JSON"),
    "c3": ("sd-t-17.02-NRW2023-kandidierende.csv", "Nationalrat: Kandidierende", "CSV"),
}


@pytest.fixture
async def ckan() -> AsyncIterator[tuple[CkanApi, str]]:
    """A CKAN API listing three resources on a files host that does not exist."""
    server = SimServer()
    api = CkanApi()
    base = await server.serve(api.app())
    for rid, (name, title, fmt) in FILES.items():
        api.put(PACKAGE, PackageResource(rid, f"http://127.0.0.1:9/v4/ogd/{name}", title, fmt))
    yield api, f"{base}/api/3/action"
    await server.close()


@pytest.fixture
async def client() -> AsyncIterator[HttpClient]:
    """An HttpClient with the daemon's User-Agent."""
    async with aiohttp.ClientSession(headers={"User-Agent": DEFAULT_USER_AGENT}) as session:
        yield HttpClient(session, Limits(4, 4), Path("/tmp"))


def tally() -> SourceTally:
    """A tally for a source of the tests' own."""
    return SourceTally("nrw", "fso", Metrics())


def terms(policy: HostPolicy) -> Terms:
    """A source's terms: an API key, 5 s, 1 MB, the hosts ``policy`` allows."""
    return Terms(tally(), {"x-api-key": "k"}, 5, 1 << 20, policy)


def source_config(api: str, **keys: Any) -> FsoSourceConfig:
    """A validated fso source table."""
    raw = {
        "sources": [
            {
                "name": "nrw",
                "kind": "fso",
                "api": api,
                "package": PACKAGE,
                "allowed_hosts": ["127.0.0.1"],
                "sinks": ["console"],
                **keys,
            }
        ],
        "sinks": [{"name": "console", "kind": "stdout"}],
    }
    source = parse_config(raw).sources[0]
    assert isinstance(source, FsoSourceConfig)
    return source


async def discover(
    api: str, client: HttpClient, known: list[Resource] | None = None, **keys: Any
) -> list[Resource]:
    """One discovery with the given source keys."""
    return await FsoSource(source_config(api, **keys), client, tally()).discover(known or [])


@pytest.mark.parametrize(
    ("select", "expected"),
    [
        ([], {"a1", "b2", "c3"}),
        ([{"format": "json"}], {"a1", "b2"}),
        ([{"file": "*-parteien.json"}], {"a1"}),
        ([{"title": "*beteiligung*", "language": "de"}], {"b2"}),
        ([{"title": "*beteiligung (fr)", "language": "de"}], set()),
        ([{"id": "c3"}, {"file": "*parteien*"}], {"a1", "c3"}),
        ([{"format": "CSV", "file": "*parteien*"}], set()),
    ],
)
async def test_selection_is_by_name_format_title_or_id(
    ckan: tuple[CkanApi, str], client: HttpClient, select: list[dict[str, str]], expected: set[str]
) -> None:
    """Selectors pick resources by what they are; every criterion of one selector must hold."""
    if not expected:
        with pytest.raises(DiscoveryFailed, match="none selected"):
            await discover(ckan[1], client, select=select)
        return
    found = await discover(ckan[1], client, select=select)
    assert {r.key for r in found} == expected


async def test_the_package_order_changes_nothing(ckan: tuple[CkanApi, str], client: HttpClient) -> None:
    """package_show lists the resources in a new order every time: the result is the same."""
    first = await discover(ckan[1], client)
    for _ in range(5):
        assert await discover(ckan[1], client) == first
    bodies = {r.path for r in ckan[0].log}
    assert bodies == {"/api/3/action/package_show"}


async def test_names_stay_when_urls_move(ckan: tuple[CkanApi, str], client: HttpClient) -> None:
    """A resource keeps the name it got first, even on a DAM URL without a file name."""
    api, url = ckan
    api.put(
        PACKAGE,
        PackageResource(
            "d4", "http://127.0.0.1:9/hub/api/dam/assets/77/master", "Gewählte", stray_whitespace=True
        ),
    )
    first = {r.key: r for r in await discover(url, client)}
    assert first["a1"].id == "sd-t-17.02-NRW2023-parteien.json"
    assert first["a1"].format == "json" and first["c3"].format == "text"
    assert first["d4"].id == "d4"  # first seen on the DAM: named by its CKAN id
    assert first["d4"].url == "http://127.0.0.1:9/hub/api/dam/assets/77/master"  # trimmed
    api.move(PACKAGE, "a1", "http://127.0.0.1:9/hub/api/dam/assets/1/master")
    moved = {
        r.key: r
        for r in await discover(url, client, list(first.values()), select=[{"file": "*-parteien.json"}])
    }
    assert moved["a1"].id == "sd-t-17.02-NRW2023-parteien.json"  # and still selected by file
    assert moved["a1"].url.endswith("/assets/1/master")


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (Fault("status", status=503), "HTTP 503"),
        (Fault("html"), "not JSON"),
        (Fault("truncate"), "truncated"),
    ],
)
async def test_a_broken_package_show_is_a_failed_discovery(
    ckan: tuple[CkanApi, str], client: HttpClient, fault: Fault, message: str
) -> None:
    """Errors, HTML pages and cut-off answers from CKAN never become an empty package."""
    ckan[0].inject("*", fault)
    with pytest.raises(DiscoveryFailed, match=message):
        await discover(ckan[1], client)


async def test_unknown_package_is_a_failed_discovery(ckan: tuple[CkanApi, str], client: HttpClient) -> None:
    """CKAN's 404 with success=false."""
    with pytest.raises(DiscoveryFailed, match="404"):
        await FsoSource(source_config(ckan[1], package="no-such-package"), client, tally()).discover([])


def test_api_presets_and_default_hosts() -> None:
    """``api = "test"`` is the FSO's test instance; the default hosts cover the FSO's."""
    assert source_config("test").api == CKAN_PRESETS["test"]
    raw = {
        "sources": [{"name": "n", "kind": "fso", "package": PACKAGE, "sinks": ["c"]}],
        "sinks": [{"name": "c", "kind": "stdout"}],
    }
    default = parse_config(raw).sources[0]
    assert isinstance(default, FsoSourceConfig)
    assert default.api == "https://ckan.opendata.swiss/api/3/action"
    assert default.discovery_interval == 60 and default.rediscover_after == 1
    policy = fso_policy(default)
    for allowed in (
        "https://ckan.opendata.swiss/x",
        "https://ogd-static.voteinfo-app.ch/v4/ogd/a.json",
        "https://bucket.s3.eu-central-1.amazonaws.com/a.json",
        "https://dam-api.bfs.admin.ch/hub/api/dam/assets/1/master",
    ):
        assert policy.refusal(allowed) is None, allowed
    for refused in (
        "http://169.254.169.254/latest/meta-data/",
        "http://localhost:8080/admin",
        "https://voteinfo-app.ch.evil.example/a.json",
        "file:///etc/passwd",
    ):
        assert policy.refusal(refused) is not None, refused


def test_host_patterns_are_checked_in_config() -> None:
    """A malformed allowed_hosts entry is refused with its key path."""
    with pytest.raises(ConfigError) as caught:
        source_config("test", allowed_hosts=["ok.example", "http://x/"])
    assert caught.value.problems[0].startswith("sources[0].allowed_hosts[1]:")


def test_swiss_time_is_converted_with_the_zurich_rules() -> None:
    """Summer time is UTC+2, winter time UTC+1 (a fixed -2 h would be wrong in winter)."""
    assert swiss_local_to_utc("2023-10-22T14:03:15") == "2023-10-22T12:03:15Z"
    assert swiss_local_to_utc("2024-03-03T14:03:15") == "2024-03-03T13:03:15Z"
    assert swiss_local_to_utc("not a time") is None


def test_details_report_what_the_file_says() -> None:
    """Progress as written, including a flag given as the string "false"."""
    document = {
        "timestamp": "2023-10-22T18:00:00",
        "stand": {
            "wahl_abgeschlossen": False,
            "gemeinden_total": 2131,
            "gemeinden_abgeschlossen": 2000,
            "other": 1,
        },
        "stand_kantone": [
            {"kanton_abgeschlossen": True},
            {"kanton_abgeschlossen": "false"},
            {"kanton_abgeschlossen": "true"},
        ],
    }
    assert fso_details(document) == {
        "timestamp": "2023-10-22T16:00:00Z",
        "timestamp_local": "2023-10-22T18:00:00",
        "stand": {"wahl_abgeschlossen": False, "gemeinden_total": 2131, "gemeinden_abgeschlossen": 2000},
        "cantons_reporting": 3,
        "cantons_complete": 2,
    }
    vote = {"schweiz": {"vorlagen": [{"vorlagenId": 6600, "vorlageBeendet": True, "provisorisch": True}]}}
    assert fso_details(vote) == {"vorlagen": [{"vorlagen_id": 6600, "beendet": True, "provisorisch": True}]}
    assert fso_details([1, 2]) is None


async def test_a_discovered_url_to_another_host_is_never_fetched(
    fso_config: ConfigFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """A tampered package pointing at an internal address: refused, logged, counted."""
    server = SimServer()
    api = CkanApi()
    inside = CkanApi("internal")  # anything that logs requests
    base = await server.serve(api.app())
    internal = (await server.serve(inside.app())).replace("127.0.0.1", "localhost")
    api.put(PACKAGE, PackageResource("x1", f"{internal}/latest/meta-data/", "Parteien"))
    api.put(PACKAGE, PackageResource("x2", "gopher://127.0.0.1:70/", "Gopher"))
    try:
        async with opened(fso_config(f"{base}/api/3/action")) as daemon:
            assert not await daemon.run_once()
            assert sample(daemon, "pollerd_refused_urls_total", source="nrw", reason="host") == 1
            assert sample(daemon, "pollerd_refused_urls_total", source="nrw", reason="scheme") == 1
            assert file_poller(daemon, "nrw").resources == []
    finally:
        await server.close()
    assert inside.log == []
    assert stdout_events(capsys.readouterr().out) == []


async def redirect_app(target: str) -> web.Application:
    """A host whose every path redirects to ``target``."""

    async def handler(request: web.Request) -> web.Response:
        raise web.HTTPFound(target)

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    return app


async def test_redirects_are_checked_hop_by_hop(client: HttpClient) -> None:
    """A redirect to a host not allowed is refused before it is requested; one that is allowed is
    followed without the source's own headers when it changes host."""
    server = SimServer()
    seen: list[dict[str, str]] = []

    async def record(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        return web.json_response({})

    target = web.Application()
    target.router.add_get("/{tail:.*}", record)
    target_base = (await server.serve(target)).replace("127.0.0.1", "localhost")
    bouncer = await server.serve(await redirect_app(f"{target_base}/data.json"))
    try:
        with pytest.raises(FetchFailure, match="the host localhost is not allowed"):
            await client.head(terms(HostPolicy(["127.0.0.1"])), f"{bouncer}/a")
        assert seen == []
        answer = await client.head(terms(HostPolicy(["127.0.0.1", "localhost"])), f"{bouncer}/a")
        assert answer.status == 200 and answer.final_url.startswith(target_base)
        assert "x-api-key" not in {k.lower() for k in seen[0]}
        assert seen[0]["User-Agent"].startswith("pollerd/")
    finally:
        await server.close()


async def test_the_user_agent_is_sent_to_ckan_and_files(
    night: ElectionNight, fso_config: ConfigFactory
) -> None:
    """opendata.swiss answers 403 without a User-Agent: every request carries pollerd's."""
    async with opened(fso_config(night.api_url)) as daemon:
        await daemon.run_once()
    agents = {r.headers.get("User-Agent") for host in night.hosts for r in host.log}
    assert agents == {DEFAULT_USER_AGENT}
    assert DEFAULT_USER_AGENT.startswith("pollerd/0.") and "(+https://" in DEFAULT_USER_AGENT


async def test_an_empty_file_before_the_first_results_is_not_published_yet(
    fso_config: ConfigFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """The FSO publishes some files empty (0 bytes) before the first results: no version, no
    failure, no alert, nothing asked again while it stays empty (its ETag answers the HEAD), and
    status says "not published yet"; its first content is version 1."""
    server = SimServer()
    api, files = CkanApi(), FileHost()
    files.add("/gemeinden.json", gzip_encoding=False)
    files.publish("/gemeinden.json", b"")
    host = await server.serve(files.app())
    base = await server.serve(api.app())
    api.put(PACKAGE, PackageResource("g1", f"{host}/gemeinden.json", "Gemeinden", "JSON"))
    try:
        async with opened(fso_config(f"{base}/api/3/action", allow_empty=False)) as daemon:
            assert await daemon.run_once()
            assert await daemon.run_once()
            [state] = file_poller(daemon, "nrw").states.values()
            assert state.unpublished and state.failures == 0 and state.sequence == 0
            [source] = (await daemon.status())["sources"]
            assert source["resources"][0]["unpublished"] and source["state"] == "ok"
            # the second cycle's HEAD found the same empty file: one GET in all
            assert len(files.requests("GET", "/gemeinden.json")) == 1
            assert sample(daemon, "pollerd_rejected_payloads_total", source="nrw", reason="empty") == 0
            files.publish("/gemeinden.json", b'{"gemeinden": [1]}')
            assert await daemon.run_once()
            [state] = file_poller(daemon, "nrw").states.values()
            assert state.sequence == 1 and not state.unpublished
    finally:
        await server.close()
    assert [e["sequence"] for e in stdout_events(capsys.readouterr().out)] == [1]
