"""Delivery: a backlog while the webhook receiver is down, then drain rates.

100 files x 100 versions are published and polled while the receiver is down (its delivery loop
failing and retrying): 10,000 events queue for a webhook sink and a filesystem sink (the latter
not started yet). Reported: outbox depth, payload bytes and RSS with the backlog; then, one sink at
a time, the drain: events per second into one local webhook receiver (in this process) and into
the filesystem sink.

Usage: python -m bench.delivery [--smoke]
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from typing import Any

from aiohttp import web

from bench.common import arguments, report, rss_mb
from pollerd.config import parse_config
from pollerd.daemon.app import Daemon
from pollerd.sim import FileHost, SimServer
from pollerd.telemetry.logs import configure_logging


async def drain(daemon: Daemon, sink: str) -> float:
    """Seconds until the sink's outbox is empty."""
    started = time.monotonic()
    daemon.deliverer.wake()
    while True:
        if await daemon.store.outbox_depth(sink) == 0:
            return time.monotonic() - started
        await asyncio.sleep(0.05)


async def main(smoke: bool) -> None:
    """Build the backlog, then drain each sink."""
    configure_logging("json", "error")
    files, versions = (20, 10) if smoke else (100, 100)
    server = SimServer()
    host = FileHost()
    base = await server.serve(host.app())
    received = 0

    async def receive(request: web.Request) -> web.Response:
        nonlocal received
        await request.read()
        received += 1
        return web.Response(text="ok")

    receiver = web.Application()
    receiver.router.add_post("/hook", receive)
    port = await _free_port()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        config = parse_config(
            {
                "daemon": {"state_dir": f"{tmp}/state", "metrics": "off", "log_level": "error"},
                "sources": [
                    {
                        "name": "files",
                        "kind": "http",
                        "sinks": ["hook", "disk"],
                        "urls": [f"{base}/f{n}.json" for n in range(files)],
                    }
                ],
                "sinks": [
                    {
                        "name": "hook",
                        "kind": "webhook",
                        "url": f"http://127.0.0.1:{port}/hook",
                        "secret": "bench",
                        "retry_base": "200ms",
                        "retry_max": "1s",
                    },
                    {"name": "disk", "kind": "filesystem", "root": f"{tmp}/out"},
                ],
            }
        )
        for n in range(files):
            host.add(f"/f{n}.json", keep=1)
        daemon = Daemon(config)
        await daemon.open()
        rss_before = rss_mb()
        daemon.deliverer.start(["hook"])  # failing: the receiver is down
        started = time.monotonic()
        for version in range(versions):
            for n in range(files):
                host.publish(f"/f{n}.json", f'{{"file": {n}, "version": {version}}}'.encode())
            await daemon.pollers["files"].poll()
        produced = time.monotonic() - started
        await daemon.deliverer.refresh_depths()
        registry = daemon.metrics.registry
        events = files * versions
        backlog = {
            "events": events,
            "produce_s": produced,
            "outbox_depth": registry.get_sample_value("pollerd_outbox_depth", {"sink": "hook"}),
            "outbox_payload_bytes": registry.get_sample_value("pollerd_outbox_bytes", {"sink": "hook"}),
            "rss_mb": rss_mb(),
            "rss_growth_mb": rss_mb() - rss_before,
        }
        await server.serve(receiver, port)
        seconds = await drain(daemon, "hook")
        rows.append(
            {
                "sink": "webhook (local receiver)",
                "events": received,
                "drain_s": seconds,
                "events_per_s": received / seconds,
                "rss_mb": rss_mb(),
            }
        )
        daemon.deliverer.start(["disk"])
        seconds = await drain(daemon, "disk")
        rows.append(
            {
                "sink": "filesystem",
                "events": events,
                "drain_s": seconds,
                "events_per_s": events / seconds,
                "rss_mb": rss_mb(),
            }
        )
        await daemon.deliverer.stop(1)
        await daemon.close()
    await server.close()
    report("delivery_backlog", "Delivery: backlog while the receiver is down", [backlog], {"smoke": smoke})
    report("delivery", "Delivery: draining the backlog, one sink at a time", rows, {"smoke": smoke})


async def _free_port() -> int:
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = int(probe.sockets[0].getsockname()[1])
    probe.close()
    await probe.wait_closed()
    return port


if __name__ == "__main__":
    asyncio.run(main(arguments(__doc__ or "").smoke))
