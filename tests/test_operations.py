"""Operations: /healthz, /readyz, /status, and the sd_notify datagrams on a real socket."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import signal
import socket
import tomllib
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from pollerd.cli import DEMO_CONFIG
from pollerd.commands.demo import SIM_AP_KEY, open_simulation
from pollerd.config import Config, load_config, parse_config
from pollerd.daemon.app import Daemon
from pollerd.daemon.state_open import StartupError
from pollerd.daemon.status_page import headline, source_state
from pollerd.sim import Fault, SimServer
from pollerd.sim.night import PACKAGE, PRIMARY_DOWN, ElectionNight
from tests.browser import browser_page
from tests.conftest import Receiver, Upstream, wait_for
from tests.test_crash import pollerd


def ops_config(tmp_path: Path, upstream: Upstream, **daemon: Any) -> Config:
    """One http source polled every 200 ms, endpoints on a free port."""
    return parse_config(
        {
            "daemon": {"state_dir": str(tmp_path / "state"), "metrics": "127.0.0.1:0", **daemon},
            "sources": [
                {
                    "name": "files",
                    "kind": "http",
                    "urls": [upstream.url("/a.json")],
                    "interval": "200ms",
                    "timeout": "30s",
                    "sinks": ["out"],
                }
            ],
            "sinks": [{"name": "out", "kind": "filesystem", "root": str(tmp_path / "out")}],
        }
    )


@asynccontextmanager
async def running(config: Config) -> AsyncIterator[tuple[Daemon, str]]:
    """The daemon running (``run``), and the base URL of its endpoints."""
    daemon = Daemon(config)
    await daemon.open()
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    try:
        if not config.daemon.metrics:  # no endpoints: just let it start
            await wait_for(lambda: daemon.scheduler.last_started is not None)
            yield daemon, ""
            return
        await wait_for(lambda: daemon.server is not None and daemon.server.port is not None)
        assert daemon.server is not None
        yield daemon, f"http://127.0.0.1:{daemon.server.port}"
    finally:
        stop.set()
        await task
        await daemon.close()


async def get(url: str) -> tuple[int, str]:
    """Status and text of a GET."""
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


def stalling_config(tmp_path: Path, night: ElectionNight) -> Config:
    """An fso source re-reading its package every 100 ms, endpoints on a free port: a CKAN API
    that stalls holds up the whole cycle (one slow file no longer does: it runs on alone)."""
    return parse_config(
        {
            "daemon": {"state_dir": str(tmp_path / "state"), "metrics": "127.0.0.1:0", "stall_after": "1s"},
            "sources": [
                {
                    "name": "nrw",
                    "kind": "fso",
                    "api": night.api_url,
                    "package": PACKAGE,
                    "allowed_hosts": ["127.0.0.1"],
                    "interval": "200ms",
                    "discovery_interval": "100ms",
                    "timeout": "30s",
                    "sinks": ["out"],
                }
            ],
            "sinks": [{"name": "out", "kind": "filesystem", "root": str(tmp_path / "out")}],
        }
    )


async def test_healthz_turns_503_while_polls_are_stuck_and_back(night: ElectionNight, tmp_path: Path) -> None:
    """A poll that hangs (the CKAN API stalls for 3 s) stops the scheduler's progress."""
    async with running(stalling_config(tmp_path, night)) as (_, base):
        assert (await get(f"{base}/healthz"))[0] == 200
        night.ckan.inject("*", Fault("slow", delay=3.0))
        seen: list[tuple[int, str]] = []

        async def poll_health() -> bool:
            seen.append(await get(f"{base}/healthz"))
            return seen[-1][0] == 503

        for _ in range(100):
            if await poll_health():
                break
            await asyncio.sleep(0.1)
        assert "polls are stuck" in seen[-1][1]
        for _ in range(100):
            await asyncio.sleep(0.1)
            if (await get(f"{base}/healthz"))[0] == 200:
                break
        else:
            pytest.fail("healthz did not recover")


async def test_readyz_waits_for_discovery_past_the_grace(upstream: Upstream, tmp_path: Path) -> None:
    """Ready once every source has discovered; past startup_grace an undiscovered one is named."""
    upstream.file("/a.json", b"{}")
    config = ops_config(tmp_path, upstream, startup_grace="0s")
    async with running(config) as (daemon, base):
        await wait_for(lambda: all(p.ready for p in daemon.pollers.values()))
        assert await get(f"{base}/readyz") == (200, "ok\n")
        daemon._opened_at = None
        assert (await get(f"{base}/readyz"))[0] == 503


async def test_status_shows_every_source_and_sink(upstream: Upstream, tmp_path: Path) -> None:
    """/status (HTML, self-contained) and /status.json carry the same sources and sinks."""
    upstream.file("/a.json", b'{"v": 1}')
    async with running(ops_config(tmp_path, upstream)) as (daemon, base):
        await wait_for(
            lambda: bool(
                daemon.pollers["files"].states.get("a.json")
                and daemon.pollers["files"].states["a.json"].sequence
            )
        )
        status, page = await get(f"{base}/status")
        _, text = await get(f"{base}/status.json")
    data = json.loads(text)
    assert status == 200 and "<html" in page and 'http-equiv="refresh"' in page
    assert "http://" not in page.split("<body>", 1)[1].replace(upstream.base, "")  # no assets
    assert [s["name"] for s in data["sources"]] == ["files"]
    assert data["sources"][0]["resources"][0]["resource"] == "a.json"
    assert [s["name"] for s in data["sinks"]] == ["out"] and data["health"] == "ok"
    for name in ("files", "a.json", "out"):
        assert name in page


@pytest.fixture
def notify_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """A datagram socket standing in for systemd's, named in NOTIFY_SOCKET; watchdog every 0.2 s."""
    path = tmp_path / "notify.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(path))
    listener.setblocking(False)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    monkeypatch.setenv("WATCHDOG_USEC", "400000")
    yield listener
    listener.close()


def datagrams(listener: socket.socket) -> list[str]:
    """Every datagram waiting on the socket."""
    received = []
    while True:
        try:
            received.append(listener.recv(4096).decode())
        except BlockingIOError:
            return received


async def test_sd_notify_ready_watchdog_stopping_in_order(
    night: ElectionNight, tmp_path: Path, notify_socket: socket.socket
) -> None:
    """READY=1 first, WATCHDOG=1 while polls progress, none while they are stuck, STOPPING=1 last."""
    messages: list[str] = []
    async with running(stalling_config(tmp_path, night)):
        await asyncio.sleep(1.0)
        messages += datagrams(notify_socket)
        assert messages[0].startswith("READY=1\nSTATUS=1 sources")
        assert sum(m.startswith("WATCHDOG=1") for m in messages) >= 3
        night.ckan.inject("*", Fault("slow", delay=4.0))
        await asyncio.sleep(2.0)  # the poll hangs; after stall_after the watchdog stops
        datagrams(notify_socket)
        await asyncio.sleep(1.0)
        stuck = datagrams(notify_socket)
        assert not any(m.startswith("WATCHDOG=1") for m in stuck)
        await asyncio.sleep(2.5)  # the slow answer ends; polls and the watchdog resume
        assert any(m.startswith("WATCHDOG=1") for m in datagrams(notify_socket))
    assert datagrams(notify_socket)[-1].startswith("STOPPING=1")


def reload_config(tmp_path: Path, upstream: Upstream, files: list[str], interval: str = "200ms") -> str:
    """A config text with one http source per file name (``src-<name>``)."""
    sources = "".join(
        f"""
[[sources]]
name = "src-{name}"
kind = "http"
urls = ["{upstream.url("/" + name + ".json")}"]
interval = "{interval}"
sinks = ["out"]
"""
        for name in files
    )
    return f"""[daemon]
state_dir = "{tmp_path / "state"}"
metrics = "off"
log_format = "json"
{sources}
[[sinks]]
name = "out"
kind = "filesystem"
root = "{tmp_path / "out"}"
"""


async def test_reload_adds_and_removes_sources_and_keeps_state(
    upstream: Upstream, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """SIGHUP's reload: b goes, c comes, a keeps its state; an invalid file changes nothing."""
    for name in "abc":
        upstream.host.add(f"/{name}.json")
        upstream.host.publish(f"/{name}.json", b"{}")
    path = tmp_path / "pollerd.toml"
    path.write_text(reload_config(tmp_path, upstream, ["a", "b"]))
    async with running(load_config(path)) as (daemon, _):
        await wait_for(
            lambda: all(p.states and next(iter(p.states.values())).sequence for p in daemon.pollers.values())
        )
        kept = daemon.pollers["src-a"]
        path.write_text(reload_config(tmp_path, upstream, ["a", "c"]))
        assert await daemon.reload(path)
        assert set(daemon.pollers) == {"src-a", "src-c"} and daemon.pollers["src-a"] is kept
        await wait_for(lambda: len(upstream.host.requests(path="/c.json")) > 0)
        b_requests = len(upstream.host.requests(path="/b.json"))
        upstream.host.publish("/a.json", b'{"v": 2}')
        await wait_for(lambda: kept.states["a.json"].sequence == 2)
        assert len(upstream.host.requests(path="/b.json")) == b_requests

        path.write_text(
            reload_config(tmp_path, upstream, ["a"]).replace('interval = "200ms"', 'interval = "soon"')
        )
        assert not await daemon.reload(path)
        assert set(daemon.pollers) == {"src-a", "src-c"}
    assert "reload refused" in caplog.text and "interval" in caplog.text


async def test_sighup_reloads_the_running_process(upstream: Upstream, tmp_path: Path) -> None:
    """A real `pollerd run` gets SIGHUP: a bad file is refused (it keeps running), a good one
    adds a source."""
    for name in "ab":
        upstream.host.add(f"/{name}.json")
        upstream.host.publish(f"/{name}.json", b"{}")
    path = tmp_path / "pollerd.toml"
    path.write_text(reload_config(tmp_path, upstream, ["a"]))
    process = await pollerd("run", "-c", str(path))
    try:
        await wait_for(lambda: len(upstream.host.requests(path="/a.json")) > 0, timeout=30)
        path.write_text("not toml [")
        process.send_signal(signal.SIGHUP)
        await asyncio.sleep(0.5)
        assert process.returncode is None
        path.write_text(reload_config(tmp_path, upstream, ["a", "b"]))
        process.send_signal(signal.SIGHUP)
        await wait_for(lambda: len(upstream.host.requests(path="/b.json")) > 0, timeout=30)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0
    assert b"reload refused" in stderr and b'"reloaded"' in stderr


async def test_status_of_a_demo_run_renders_in_a_browser(tmp_path: Path) -> None:
    """The demo's sources and sinks all appear on /status; headless Chromium (where installed)
    renders it without console errors and takes one screenshot."""
    server = SimServer()
    for attempt in range(5):  # a port found free may be taken by another connection before it is bound
        text = DEMO_CONFIG.read_text()
        ports = {}
        for default in ("8000", "8001", "8002"):
            ports[default] = free_port()
            text = text.replace(f"127.0.0.1:{default}", f"127.0.0.1:{ports[default]}")
        try:
            simulation = await open_simulation(
                server, ports["8000"], ports["8001"], {SIM_AP_KEY}, ports["8002"]
            )
            break
        except StartupError:
            await server.close()
            server = SimServer()
            if attempt == 4:
                raise
    text = text.replace("127.0.0.1:9108", "127.0.0.1:0").replace('"state/demo"', f'"{tmp_path}/state"')
    text = text.replace('root = "out"', f'root = "{tmp_path}/out"')
    config = parse_config(tomllib.loads(text))
    assert simulation.night is not None
    simulation.night.clock.pause()
    simulation.night.clock.jump((PRIMARY_DOWN - timedelta(hours=1)).timestamp())
    try:
        async with running(config) as (daemon, base):
            await wait_for(lambda: all(p.ready for p in daemon.pollers.values()), timeout=30)
            status, page = await get(f"{base}/status")
            data = json.loads((await get(f"{base}/status.json"))[1])
            shot = await screenshot(f"{base}/status", tmp_path / "status.png")
    finally:
        await simulation.close()
        await server.close()
    assert status == 200
    assert [s["name"] for s in data["sources"]] == ["nrw2023", "ap", "democracyclub"]
    assert [s["name"] for s in data["sinks"]] == ["out", "console"]
    for name in (
        "nrw2023",
        "sd-t-17.02-NRW2023-parteien.json",
        "ap",
        "senate",
        "democracyclub",
        "postcode-AA12AA",
        "out",
        "console",
    ):
        assert name in page
    if shot is not None:
        png, console = shot
        assert png.stat().st_size > 10_000
        assert not [line for line in console if "CONSOLE" in line and "error" in line.lower()]


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def screenshot(url: str, target: Path) -> tuple[Path, list[str]] | None:
    """A headless Chromium screenshot of ``url`` and its console log; None without Chromium."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        return None
    process = await asyncio.create_subprocess_exec(
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--enable-logging=stderr",
        "--v=0",
        "--window-size=1280,1800",
        f"--screenshot={target}",
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    return target, stderr.decode(errors="replace").splitlines()


async def test_a_failing_night_is_not_ok_in_the_browser(
    upstream: Upstream, receiver: Receiver, tmp_path: Path
) -> None:
    """Every source failing and three deliveries dead: Chromium shows a red header that says
    so, red rows, ages in words and problems in words (no exception class names)."""
    receiver.answers = [(404, {})] * 3
    urls = [upstream.file(f"/{name}.json", b"{}") for name in "abc"]
    config = parse_config(
        {
            "daemon": {"state_dir": str(tmp_path / "state"), "metrics": "127.0.0.1:0"},
            "sources": [
                {
                    "name": "files",
                    "kind": "http",
                    "urls": urls,
                    "interval": "300ms",
                    "backoff_base": "20s",
                    "sinks": ["cms"],
                },
                {
                    "name": "nowhere",
                    "kind": "http",
                    "urls": ["http://127.0.0.1:9/x.json"],
                    "interval": "300ms",
                    "backoff_base": "20s",
                    "sinks": ["cms"],
                },
            ],
            "sinks": [
                {"name": "cms", "kind": "webhook", "url": receiver.url, "secret": "s3cret-for-the-test"}
            ],
        }
    )
    async with running(config) as (daemon, base):
        await wait_for(lambda: len(receiver.requests) == 3, timeout=30)
        upstream.host.files.clear()  # every file now answers 404
        await wait_for(
            lambda: all(s.failures for p in daemon.pollers.values() for s in p.states.values()), timeout=30
        )
        async with browser_page() as page:
            await page.open(f"{base}/status")
            headline = await page.evaluate("document.getElementById('headline').innerText")
            header_colour = await page.evaluate(
                "getComputedStyle(document.getElementById('headline')).backgroundColor"
            )
            rows = await page.evaluate(
                "[...document.querySelectorAll('h3.source + table tr:not(:first-child)')]"
                ".map(r => getComputedStyle(r.cells[0]).backgroundColor)"
            )
            states = await page.evaluate(
                "[...document.querySelectorAll('h3.source')].map(h => h.dataset.state)"
            )
            text = await page.evaluate("document.body.innerText")
            shot = await page.screenshot(tmp_path / "failing.png")
    assert "2 sources failing: files, nowhere" in headline and "3 deliveries dead" in headline
    assert header_colour == "rgb(253, 232, 234)"  # the red of a problem, not OK's green
    assert states == ["failing", "failing"]
    assert len(rows) == 4 and set(rows) == {"rgb(253, 232, 234)"}
    assert "the server answered 404 (not found)" in text
    assert "cannot connect to 127.0.0.1:9: connection refused" in text
    assert re.search(r"last change \d+ s ago|\d+ s ago", text) and re.search(r"in \d+ s", text)
    assert not re.search(r"\b[A-Z][A-Za-z]+(Error|Exception)\b", text), text
    assert shot.stat().st_size > 10_000


def test_states_and_the_headline_from_a_table() -> None:
    """Worst first: stopped, failing, stale, budget-limited, ok; dead letters make it red."""

    def source(name: str, **facts: Any) -> dict[str, Any]:
        base = {
            "name": name,
            "stopped": False,
            "resources": [],
            "budget_limited": False,
            "last_clean_poll_age_s": 1.0,
        }
        return {**base, **facts}

    cases = [
        (source("a"), "ok"),
        (source("a", budget_limited=True), "budget-limited"),
        (source("a", last_clean_poll_age_s=31.0), "stale"),
        (source("a", last_clean_poll_age_s=None), "stale"),
        (source("a", resources=[{"failures": 1}]), "failing"),
        (source("a", stopped=True, resources=[{"failures": 1}]), "stopped"),
    ]
    for facts, expected in cases:
        assert source_state(facts, interval=10.0) == expected, facts
    sinks = [{"dead": 0}]
    assert headline({"sources": [{"name": "a", "state": "ok"}], "sinks": sinks}, None) == ("OK", "ok")
    assert headline({"sources": [{"name": "a", "state": "budget-limited"}], "sinks": sinks}, None) == (
        "1 source budget-limited: a",
        "warn",
    )
    words, colour = headline({"sources": [{"name": "a", "state": "ok"}], "sinks": [{"dead": 2}]}, None)
    assert colour == "bad" and words.startswith("2 deliveries dead")
