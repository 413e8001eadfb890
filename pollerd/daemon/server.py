"""The daemon's own HTTP endpoints on the metrics address: ``/metrics``, ``/healthz``,
``/readyz``, ``/status``, ``/status.json``, and, with an ``ap`` source, ``/desk``. Bound to
127.0.0.1 unless configured otherwise."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client.aiohttp import make_aiohttp_handler

from pollerd.daemon.desk_page import DeskPage
from pollerd.daemon.status_html import render
from pollerd.telemetry.metrics import Metrics

Check = Callable[[], str | None]


class OpsServer:
    """One aiohttp app for everything an operator or an orchestrator asks the daemon."""

    def __init__(
        self,
        metrics: Metrics,
        address: str,
        health: Check,
        readiness: Check,
        status: Callable[[], Awaitable[dict[str, Any]]],
        desk: DeskPage | None = None,
    ) -> None:
        host, _, port = address.rpartition(":")
        self._host = host.strip("[]")
        self._port = int(port)
        self._health = health
        self._readiness = readiness
        self._status = status
        app = web.Application()
        app.router.add_get("/metrics", make_aiohttp_handler(metrics.registry))
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/status", self._status_html)
        app.router.add_get("/status.json", self._status_json)
        if desk is not None:
            app.router.add_get("/desk", desk.show)
            app.router.add_post("/desk", desk.take)
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

    async def _healthz(self, request: web.Request) -> web.Response:
        return _check(self._health())

    async def _readyz(self, request: web.Request) -> web.Response:
        return _check(self._readiness())

    async def _status_html(self, request: web.Request) -> web.Response:
        page = render(await self._status(), self._health())
        return web.Response(text=page, content_type="text/html")

    async def _status_json(self, request: web.Request) -> web.Response:
        return web.json_response({**await self._status(), "health": self._health() or "ok"})


def _check(problem: str | None) -> web.Response:
    if problem is None:
        return web.Response(text="ok\n")
    return web.Response(status=503, text=problem + "\n")
