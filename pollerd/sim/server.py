"""Running simulator hosts on local ports."""

from __future__ import annotations

from aiohttp import web


class SimServer:
    """Serves one or more aiohttp apps (one per simulated host) on 127.0.0.1."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._host = host
        self._runners: list[web.AppRunner] = []

    async def serve(self, app: web.Application, port: int = 0) -> str:
        """Start ``app`` on ``port`` (0: any free port); return its base URL."""
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self._host, port)
        await site.start()
        self._runners.append(runner)
        bound = runner.addresses[0][1]
        return f"http://{self._host}:{bound}"

    async def close(self) -> None:
        """Stop every host."""
        for runner in reversed(self._runners):
            await runner.cleanup()
        self._runners.clear()
