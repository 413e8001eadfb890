"""``pollerd sim`` and ``pollerd demo``: the election night alone, or with the daemon and a summary."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass

import structlog

from pollerd.app import Daemon, stop_on_signals
from pollerd.config import Config
from pollerd.sim import SimServer
from pollerd.sim.night import END, START, ElectionNight
from pollerd.waiting import wait_set

NIGHT_SECONDS = (END - START).total_seconds()
DEFAULT_SPEED = 270.0  # the 13 h 40 min night in about three minutes


async def serve_simulator(port: int, speed: float) -> None:
    """Serve the election night (CKAN on ``port``) until it ends, SIGTERM or SIGINT."""
    stop = stop_on_signals()
    server = SimServer()
    night = ElectionNight()
    api = await night.open(server, port)
    structlog.get_logger("pollerd.sim").info(
        "simulator listening", api=api, package="eidg-wahlen-2023",
        minutes=round(NIGHT_SECONDS / speed / 60, 1))
    try:
        await night.play(speed, stop)
    finally:
        await server.close()


@dataclass(frozen=True)
class DemoSummary:
    """What a demo run did, for the closing line."""

    seconds: float
    versions_published: int
    changes: int
    url_switches: int
    requests: int
    downloaded_bytes: int
    naive_bytes: int

    def line(self) -> str:
        """One human line."""
        share = self.downloaded_bytes / self.naive_bytes if self.naive_bytes else 0.0
        return (f"demo: {self.seconds:.0f}s, {self.changes} changes seen of "
                f"{self.versions_published} versions published, {self.url_switches} URL switches, "
                f"{self.requests} requests, {_mb(self.downloaded_bytes)} downloaded vs "
                f"{_mb(self.naive_bytes)} for a client that downloads every file every poll "
                f"({share:.1%})")


def _mb(count: int) -> str:
    return f"{count / 1e6:.1f} MB"


def run_demo(config: Config, port: int, duration: float | None, speed: float) -> int:
    """Play the night against the daemon; print the summary on stderr at the end."""
    summary = asyncio.run(_demo(config, port, duration, speed))
    print(summary.line(), file=sys.stderr)
    return 0


async def _demo(config: Config, port: int, duration: float | None, speed: float) -> DemoSummary:
    stop = stop_on_signals()
    server = SimServer()
    night = ElectionNight()
    await night.open(server, port)
    loop = asyncio.get_running_loop()
    started = loop.time()
    if duration is not None:
        loop.call_later(duration, stop.set)
    interval = min(source.interval for source in config.sources)
    daemon = Daemon(config)
    player = asyncio.create_task(_play_then_stop(night, speed, stop, grace=3 * interval))
    naive = asyncio.create_task(_naive_client_bytes(night, interval, stop))
    try:
        await daemon.open()
        await daemon.run(stop)
    finally:
        stop.set()
        await daemon.close()
        await player
        naive_bytes = await naive
        await server.close()
    return _summarise(daemon, night, loop.time() - started, naive_bytes)


async def _play_then_stop(night: ElectionNight, speed: float, stop: asyncio.Event,
                          grace: float) -> None:
    await night.play(speed, stop)
    if not stop.is_set():
        await asyncio.sleep(grace)  # the last versions still reach the daemon
        stop.set()


async def _naive_client_bytes(night: ElectionNight, interval: float, stop: asyncio.Event) -> int:
    """What a client that downloads every listed file every ``interval`` would have pulled."""
    total = 0
    while not stop.is_set():
        total += night.listed_bytes()
        await wait_set(stop, interval)
    return total


def _summarise(daemon: Daemon, night: ElectionNight, seconds: float, naive_bytes: int) -> DemoSummary:
    registry = daemon.metrics.registry

    def total(metric: str) -> int:
        return int(sum(registry.get_sample_value(metric, {"source": s.name}) or 0
                       for s in daemon.config.sources))

    return DemoSummary(
        seconds=seconds,
        versions_published=night.versions_published(),
        changes=total("pollerd_changes_total"),
        url_switches=total("pollerd_url_switches_total"),
        requests=sum(len(host.log) for host in night.hosts),
        downloaded_bytes=total("pollerd_downloaded_bytes_total"),
        naive_bytes=naive_bytes,
    )
