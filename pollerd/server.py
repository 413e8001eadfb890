"""The daemon's own HTTP endpoints (``/metrics``), on the configured address."""

from __future__ import annotations

from aiohttp import web
from prometheus_client.aiohttp import make_aiohttp_handler

from pollerd.metrics import Metrics


class MetricsServer:
    """An aiohttp app serving ``/metrics`` from the daemon's registry."""

    def __init__(self, metrics: Metrics, address: str) -> None:
        host, _, port = address.rpartition(":")
        self._host = host.strip("[]")
        self._port = int(port)
        app = web.Application()
        app.router.add_get("/metrics", make_aiohttp_handler(metrics.registry))
        self._runner = web.AppRunner(app, access_log=None)
        self.port: int | None = None

    async def start(self) -> None:
        """Listen; ``port`` then holds the bound port (useful with port 0)."""
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        """Stop listening."""
        await self._runner.cleanup()
