"""``pollerd sim`` and ``pollerd demo``: the simulator alone, or with the daemon and a summary."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass

import structlog

from pollerd.app import Daemon, stop_on_signals
from pollerd.config import Config
from pollerd.sim import FileHost, SimServer, Version
from pollerd.sim.demo import DemoFeed


async def serve_simulator(port: int, step: float) -> None:
    """Serve the demo feed until SIGTERM or SIGINT."""
    stop = stop_on_signals()
    server = SimServer()
    host = FileHost()
    feed = DemoFeed(host)
    url = await server.serve(host.app(), port)
    structlog.get_logger("pollerd.sim").info("simulator listening", url=url,
                                             files=sorted(host.files))
    try:
        await feed.play(step, stop)
    finally:
        await server.close()


@dataclass(frozen=True)
class DemoSummary:
    """What a demo run did, for the closing line."""

    seconds: float
    versions_published: int
    changes: int
    requests: int
    downloaded_bytes: int
    naive_bytes: int

    def line(self) -> str:
        """One human line."""
        saved = 1 - self.downloaded_bytes / self.naive_bytes if self.naive_bytes else 0.0
        return (f"demo: {self.seconds:.0f}s, {self.changes} changes seen of "
                f"{self.versions_published} versions published, {self.requests} requests, "
                f"{self.downloaded_bytes} bytes downloaded vs {self.naive_bytes} for a client "
                f"that downloads every file every poll ({saved:.0%} saved)")


def run_demo(config: Config, port: int, duration: float | None) -> int:
    """Run the demo feed and the daemon together; print the summary on stderr at the end."""
    summary = asyncio.run(_demo(config, port, duration))
    print(summary.line(), file=sys.stderr)
    return 0


async def _demo(config: Config, port: int, duration: float | None) -> DemoSummary:
    stop = stop_on_signals()
    server = SimServer()
    host = FileHost()
    feed = DemoFeed(host)
    await server.serve(host.app(), port)
    loop = asyncio.get_running_loop()
    started = loop.time()
    if duration is not None:
        loop.call_later(duration, stop.set)
    daemon = Daemon(config)
    player = asyncio.create_task(feed.play(1.0, stop))
    try:
        await daemon.open()
        await daemon.run(stop)
    finally:
        await daemon.close()
        await player
        await server.close()
    return _summarise(daemon, host, loop.time() - started)


def _summarise(daemon: Daemon, host: FileHost, seconds: float) -> DemoSummary:
    registry = daemon.metrics.registry

    def total(metric: str) -> int:
        return int(sum(registry.get_sample_value(metric, {"source": s.name}) or 0
                       for s in daemon.config.sources))

    polls = sum(registry.get_sample_value("pollerd_polls_total",
                                          {"source": s.name, "outcome": o}) or 0
                for s in daemon.config.sources for o in ("unchanged", "changed", "error"))
    sizes = [len(f.current.body) for f in host.files.values() if f.current]
    mean_size = sum(sizes) / len(sizes) if sizes else 0
    published = sum(distinct_versions(f.versions) for f in host.files.values())
    return DemoSummary(
        seconds=seconds,
        versions_published=published,
        changes=total("pollerd_changes_total"),
        requests=len(host.log),
        downloaded_bytes=total("pollerd_downloaded_bytes_total"),
        naive_bytes=int(polls * mean_size),
    )


def distinct_versions(versions: list[Version]) -> int:
    """Versions whose bytes differ from the one before (a re-upload of the same bytes is not one)."""
    return sum(1 for i, v in enumerate(versions) if i == 0 or v.body != versions[i - 1].body)
