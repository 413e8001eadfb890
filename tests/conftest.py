"""Shared fixtures: a simulator file host on 127.0.0.1 and daemons built against it."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from pollerd.config import Config, parse_config
from pollerd.daemon.app import Daemon
from pollerd.polling.file_poller import SourcePoller
from pollerd.sim import FileHost, SimServer
from pollerd.sim.ap import ApElection, ApServer
from pollerd.sim.democracyclub import DcServer, DcWorld
from pollerd.sim.fso_content import SMALL
from pollerd.sim.fso_vote import VOTE_PACKAGE
from pollerd.sim.night import PACKAGE, ElectionNight
from pollerd.sources import SOURCE_KINDS, SourceKind
from pollerd.telemetry.logs import configure_logging
from tests import postgres
from tests.postgres import Cluster


@dataclass
class Upstream:
    """A running simulator host and its base URL."""

    host: FileHost
    base: str

    def url(self, path: str) -> str:
        """The full URL of a path on this host."""
        return self.base + path

    def etag(self, path: str) -> str:
        """The ETag the host serves for ``path`` now (it must have a version)."""
        version = self.host.files[path].current
        assert version is not None, f"{path} has no version"
        return version.etag

    def file(self, path: str, body: bytes) -> str:
        """Declare a file with its first version; its URL."""
        self.host.add(path)
        self.host.publish(path, body)
        return self.url(path)


REQUIRE_ALL = os.environ.get("POLLERD_REQUIRE_ALL") == "1"  # set by .ci/run: no skipping there


def require(available: bool, what: str) -> None:
    """Skip a test whose tool or server is not on this machine, with one clear line; in CI
    (POLLERD_REQUIRE_ALL=1) fail instead, since CI installs everything the tests need."""
    if available:
        return
    if REQUIRE_ALL:
        pytest.fail(f"{what} is required in CI (POLLERD_REQUIRE_ALL=1) but missing")
    pytest.skip(f"{what} is not installed here")


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[Cluster | None]:
    """One throwaway PostgreSQL cluster for the whole session (None where none is installed)."""
    yield from postgres.cluster()


@pytest.fixture
def postgres_url(postgres_cluster: Cluster | None) -> str:
    """A fresh, empty PostgreSQL database (skipped where PostgreSQL is not installed, failed in CI)."""
    require(postgres_cluster is not None, "PostgreSQL (initdb, pg_ctl)")
    assert postgres_cluster is not None
    return postgres_cluster.database()


@pytest.fixture(autouse=True)
def _logging(capsys: pytest.CaptureFixture[str]) -> None:
    """Log lines (debug and up) go to the stderr ``capsys`` captures, for tests that read them."""
    configure_logging("json", "debug")


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    """A FileHost served on a free local port."""
    server = SimServer()
    host = FileHost()
    base = await server.serve(host.app())
    yield Upstream(host, base)
    await server.close()


@pytest.fixture
async def second_upstream() -> AsyncIterator[Upstream]:
    """Another FileHost on another port (a mirror)."""
    server = SimServer()
    host = FileHost("mirror")
    base = await server.serve(host.app())
    yield Upstream(host, base)
    await server.close()


ConfigFactory = Callable[..., Config]


@pytest.fixture
def make_config(tmp_path: Path) -> ConfigFactory:
    """Build a validated Config: one http source (``files``) with a filesystem and a stdout sink."""

    def build(urls: list[str], **source: Any) -> Config:
        raw: dict[str, Any] = {
            "daemon": {"state_dir": str(tmp_path / "state"), "metrics": "off"},
            "sources": [
                {
                    "name": "files",
                    "kind": "http",
                    "urls": urls,
                    "interval": "1s",
                    "sinks": ["out", "console"],
                    "backoff_base": "50ms",
                    **source,
                }
            ],
            "sinks": [
                {"name": "out", "kind": "filesystem", "root": str(tmp_path / "out")},
                {"name": "console", "kind": "stdout"},
            ],
        }
        return parse_config(raw)

    return build


@asynccontextmanager
async def opened(config: Config, kinds: Mapping[str, SourceKind] = SOURCE_KINDS) -> AsyncIterator[Daemon]:
    """A daemon (its source kinds from ``kinds``), opened, closed afterwards."""
    daemon = Daemon(config, kinds=kinds)
    await daemon.open()
    try:
        yield daemon
    finally:
        await daemon.close()


def versions_on_disk(root: Path, source: str, resource: str) -> list[Path]:
    """Version files (not latest, not event files) written by the filesystem sink."""
    folder = root / source / resource
    return sorted(
        p
        for p in folder.iterdir()
        if not p.name.startswith(("latest", ".")) and not p.name.endswith(".event.json")
    )


def stdout_events(text: str) -> list[dict[str, Any]]:
    """The JSON lines the stdout sink printed."""
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def sample(daemon: Daemon, name: str, **labels: str) -> float:
    """A metric sample's value (0 when absent)."""
    return daemon.metrics.registry.get_sample_value(name, labels) or 0.0


async def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    """Wait until ``condition()`` holds (generous bound; fails the test otherwise)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def wait_out_backoff(daemon: Daemon) -> None:
    """Sleep until no resource waits out a backoff any more."""
    for poller in daemon.pollers.values():
        until = max((s.backoff_until or 0) for s in poller.states.values())
        await asyncio.sleep(max(0.0, until - time.time()) + 0.01)


@pytest.fixture
async def night() -> AsyncIterator[ElectionNight]:
    """The simulated FSO election night (small files), served; its clock does not run by itself."""
    server = SimServer()
    election = ElectionNight(SMALL)
    await election.open(server)
    yield election
    await server.close()


@pytest.fixture
def fso_config(tmp_path: Path) -> ConfigFactory:
    """Build a validated Config with one fso source (``nrw``) for a CKAN API URL."""

    def build(api: str, **source: Any) -> Config:
        raw: dict[str, Any] = {
            "daemon": {"state_dir": str(tmp_path / "state"), "metrics": "off"},
            "sources": [
                {
                    "name": "nrw",
                    "kind": "fso",
                    "api": api,
                    "package": PACKAGE,
                    "allowed_hosts": ["127.0.0.1"],
                    "discovery_interval": "60s",
                    "backoff_base": "20ms",
                    "backoff_max": "100ms",
                    "sinks": ["out", "console"],
                    **source,
                }
            ],
            "sinks": [
                {"name": "out", "kind": "filesystem", "root": str(tmp_path / "out")},
                {"name": "console", "kind": "stdout"},
            ],
        }
        return parse_config(raw)

    return build


def file_poller(daemon: Daemon, name: str) -> SourcePoller:
    """The poller of an ``http`` or ``fso`` source."""
    poller = daemon.pollers[name]
    assert isinstance(poller, SourcePoller)
    return poller


@dataclass
class Received:
    """One request the receiver got."""

    at: float
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A webhook receiver: answers from a script (then 200), records every request."""

    url: str = ""
    answers: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        """Record, then answer the next scripted status (200 when the script is done)."""
        self.requests.append(Received(time.monotonic(), dict(request.headers), await request.read()))
        status, headers = self.answers.pop(0) if self.answers else (200, {})
        return web.Response(status=status, text="nope" if status >= 300 else "ok", headers=headers)

    def bodies(self) -> list[Any]:
        """The JSON bodies received."""
        return [json.loads(r.body) for r in self.requests]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A webhook receiver on a free local port."""
    server = SimServer()
    hook = Receiver()
    app = web.Application()
    app.router.add_post("/hook", hook.handle)
    hook.url = await server.serve(app) + "/hook"
    yield hook
    await server.close()


def webhook_sink(url: str, extra: str = "", name: str = "hook") -> str:
    """A ``[[sinks]]`` table: a webhook to ``url`` (signed with a test secret), ``extra`` keys."""
    return (
        f'[[sinks]]\nname = "{name}"\nkind = "webhook"\nurl = "{url}"\n'
        f'secret = "s3cret-for-the-test"\n{extra}'
    )


async def serve_receiver(
    handle: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> tuple[SimServer, str]:
    """A webhook receiver answering with ``handle`` on a free port: its server and hook URL."""
    app = web.Application()
    app.router.add_post("/hook", handle)
    server = SimServer()
    return server, await server.serve(app) + "/hook"


def config_file(
    tmp_path: Path,
    urls: list[str],
    daemon: str = 'metrics = "off"',
    source: str = "",
    sink: str | None = None,
    sink_name: str = "out",
) -> Path:
    """A TOML config file (for commands run as the CLI would): one http source ``files`` over
    ``urls`` into one sink ``out``, a filesystem sink under ``tmp_path/out`` unless ``sink``
    gives another ``[[sinks]]`` table (called ``sink_name``). ``daemon`` and ``source`` add
    lines to those tables."""
    sink = sink or f'[[sinks]]\nname = "out"\nkind = "filesystem"\nroot = "{tmp_path / "out"}"\n'
    path = tmp_path / "pollerd.toml"
    path.write_text(
        f'[daemon]\nstate_dir = "{tmp_path / "state"}"\n{daemon}\n'
        f'[[sources]]\nname = "files"\nkind = "http"\nurls = {json.dumps(urls)}\n'
        f'sinks = ["{sink_name}"]\n{source}\n{sink}'
    )
    return path


AP_KEY = "ap-key-7f3c9e21d4b8"


def ap_source(base: str, sinks: list[str], **keys: Any) -> dict[str, Any]:
    """An ``ap`` source table (``ap``) for the replay at ``base``, its key inline; ``keys`` add
    to it or override."""
    table = {"name": "ap", "kind": "ap", "api": base, "election_date": "2026-11-03", "api_key": AP_KEY}
    return table | {"quota_per_minute": 1000, "sinks": sinks, **keys}


def one_source(tmp_path: Path, source: dict[str, Any], sinks: list[dict[str, Any]]) -> Config:
    """A validated config: state under ``tmp_path/state``, no metrics port, one source."""
    daemon = {"state_dir": str(tmp_path / "state"), "metrics": "off"}
    return parse_config({"daemon": daemon, "sources": [source], "sinks": sinks})


@pytest.fixture
async def ap_uncalled() -> AsyncIterator[tuple[ApServer, str]]:
    """The AP simulator's whole night, a step into it (nothing called yet: the desk's tests
    call and retract races themselves)."""
    server = SimServer()
    replay = ApServer(ApElection(), {AP_KEY}, quota_per_minute=100_000)
    replay.election.advance(1)
    yield replay, await server.serve(replay.app())
    await server.close()


@pytest.fixture
async def ap() -> AsyncIterator[tuple[ApServer, str]]:
    """The AP replay server (a 40-step night, deltas paged by 3) and its base URL."""
    server = SimServer()
    replay = ApServer(ApElection(steps=40), {AP_KEY}, quota_per_minute=1000, page_size=3)
    base = await server.serve(replay.app())
    yield replay, base
    await server.close()


DC_KEY = "dc-token-5b1e0c77a9"


def fso_source(api: str, sinks: list[str], **keys: Any) -> dict[str, Any]:
    """An ``fso`` source table (``wahlen``) for the simulated night's CKAN at ``api``, its hosts
    allowed (the parties file, empty before noon, is "not published yet" until its first
    results); ``keys`` add to it or override."""
    table = {
        "name": "wahlen",
        "kind": "fso",
        "api": api,
        "package": PACKAGE,
        "allowed_hosts": ["127.0.0.1"],
    }
    return table | {"sinks": sinks, **keys}


def vote_source(api: str, sinks: list[str]) -> dict[str, Any]:
    """An ``fso`` source table (``abstimmung``) for the simulated vote day's CKAN at ``api``."""
    return {
        "name": "abstimmung",
        "kind": "fso",
        "api": api,
        "package": VOTE_PACKAGE,
        "allowed_hosts": ["127.0.0.1"],
        "sinks": sinks,
    }


def dc_source(base: str, sinks: list[str], **keys: Any) -> dict[str, Any]:
    """A ``democracyclub`` source table (``uk``) for the stand-in at ``base``: two postcodes and
    the candidates feed, the token inline; ``keys`` add to it or override."""
    table = {
        "name": "uk",
        "kind": "democracyclub",
        "api": f"{base}/api/v1",
        "candidates_api": f"{base}/api/next",
        "auth_token": DC_KEY,
        "postcodes": ["AA12AA", "AA12AB"],
        "candidates": True,
    }
    return table | {"sinks": sinks, **keys}


@pytest.fixture
async def dc() -> AsyncIterator[tuple[DcServer, str]]:
    """The Democracy Club stand-in and its base URL."""
    server = SimServer()
    service = DcServer(DcWorld(), {DC_KEY}, firewall_limit=10_000)
    base = await server.serve(service.app())
    yield service, base
    await server.close()


@pytest.fixture
def dc_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Build a Config with one democracyclub source (``dc``); the key comes from $DC_KEY."""
    monkeypatch.setenv("DC_KEY", DC_KEY)

    def build(base: str, daemon: dict[str, Any] | None = None, **source: Any) -> Config:
        raw: dict[str, Any] = {
            "daemon": {"state_dir": str(tmp_path / "state"), "metrics": "off", **(daemon or {})},
            "sources": [
                {
                    "name": "dc",
                    "kind": "democracyclub",
                    "api": f"{base}/api/v1",
                    "candidates_api": f"{base}/api/next",
                    "auth_token": "${DC_KEY}",
                    "backoff_base": "20ms",
                    "backoff_max": "100ms",
                    "sinks": ["out", "console"],
                    **source,
                }
            ],
            "sinks": [
                {"name": "out", "kind": "filesystem", "root": str(tmp_path / "out")},
                {"name": "console", "kind": "stdout"},
            ],
        }
        return parse_config(raw)

    return build
