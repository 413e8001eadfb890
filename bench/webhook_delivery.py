"""Webhook delivery: a backlog built while the receiver is down, then drained.

1. The receiver is down while a file host publishes 100 files x 100 versions and the daemon polls
   them: 10,000 events go into the outbox. Printed: outbox depth and bytes, the process's memory.
2. The receiver comes up (127.0.0.1, in this process): printed, the delivery rate until the outbox
   is empty.
Usage: python bench/webhook_delivery.py [files] [versions]
"""

from __future__ import annotations

import asyncio
import resource
import sys
import tempfile
import time
from pathlib import Path

from aiohttp import web

from pollerd.app import Daemon
from pollerd.config import parse_config
from pollerd.logs import configure_logging
from pollerd.sim import FileHost, SimServer


def rss_mb() -> float:
    """Resident memory now, in MB (Linux)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 1e6


async def main(files: int, versions: int) -> None:
    """Run both phases and print their figures."""
    configure_logging("json", "error")
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
    with tempfile.TemporaryDirectory() as tmp:
        config = parse_config({
            "daemon": {"state_dir": f"{tmp}/state", "metrics": "off", "log_level": "error"},
            "sources": [{"name": "files", "kind": "http", "sinks": ["hook"],
                         "urls": [f"{base}/f{n}.json" for n in range(files)]}],
            "sinks": [{"name": "hook", "kind": "webhook", "url": f"http://127.0.0.1:{port}/hook",
                       "secret": "bench", "retry_base": "200ms", "retry_max": "1s"}],
        })
        for n in range(files):
            host.add(f"/f{n}.json", keep=1)
        daemon = Daemon(config)
        await daemon.open()
        daemon.deliverer.start()
        poller = daemon.pollers["files"]
        started = time.monotonic()
        for version in range(versions):
            for n in range(files):
                host.publish(f"/f{n}.json", f'{{"file": {n}, "version": {version}}}'.encode())
            await poller.poll()
        produced = time.monotonic() - started
        await daemon.deliverer.refresh_depths()
        registry = daemon.metrics.registry
        depth = registry.get_sample_value("pollerd_outbox_depth", {"sink": "hook"})
        size = registry.get_sample_value("pollerd_outbox_bytes", {"sink": "hook"})
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1000
        print(f"receiver down: {files * versions} events produced in {produced:.1f}s; outbox depth "
              f"{depth:.0f}, {size:.0f} payload bytes; RSS {rss_mb():.0f} MB (peak {peak:.0f} MB)")

        await server.serve(receiver, port)
        up = time.monotonic()
        daemon.deliverer.wake()
        while True:
            if await daemon.store.outbox_depth("hook") == 0:
                break
            await asyncio.sleep(0.1)
        drained = time.monotonic() - up
        print(f"receiver up: {received} events delivered in {drained:.1f}s = "
              f"{received / drained:.0f} events/s (one sink, one receiver, same host); "
              f"RSS {rss_mb():.0f} MB")
        await daemon.deliverer.stop(1)
        await daemon.close()
    await server.close()


async def _free_port() -> int:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = int(server.sockets[0].getsockname()[1])
    server.close()
    await server.wait_closed()
    return port


if __name__ == "__main__":
    arguments = [int(a) for a in sys.argv[1:3]]
    asyncio.run(main(*(arguments or [100, 100])))
