"""Headless Chromium driven over the DevTools protocol (aiohttp's websocket client): pages are
checked as a browser renders them, computed styles included, not as HTML text."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import os
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from tests.conftest import require

# Without the background-networking flags Chromium tries hosts this machine cannot reach
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--hide-scrollbars",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--window-size=1280,1600",
    "--remote-debugging-port=0",
)


class Page:
    """One browser tab."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self._socket = socket
        self._ids = itertools.count(1)

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        """One DevTools command; its result (events in between are passed over)."""
        number = next(self._ids)
        await self._socket.send_json({"id": number, "method": method, "params": params})
        while True:
            message = await asyncio.wait_for(self._socket.receive_json(), timeout=60)
            if message.get("id") == number:
                assert "error" not in message, message
                result: dict[str, Any] = message["result"]
                return result

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page."""
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    async def open(self, url: str) -> None:
        """Navigate and wait until the page has loaded."""
        await self.send("Page.navigate", url=url)
        for _ in range(600):
            if (
                await self.evaluate("document.readyState") == "complete"
                and await self.evaluate("location.href") == url
            ):
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"{url} did not load")

    async def screenshot(self, target: Path) -> Path:
        """A PNG of the page as shown."""
        data = await self.send("Page.captureScreenshot", format="png")
        target.write_bytes(base64.b64decode(data["data"]))
        return target


@asynccontextmanager
async def browser_page() -> AsyncIterator[Page]:
    """A tab of a fresh headless Chromium (skipped where none is installed, failed in CI)."""
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    require(executable is not None, "Chromium")
    assert executable is not None
    # Chromium's helpers may still write to the profile a moment after it is killed
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        process = await asyncio.create_subprocess_exec(
            executable,
            *FLAGS,
            f"--user-data-dir={profile}",
            "about:blank",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            port = await _devtools_port(Path(profile) / "DevToolsActivePort")
            async with aiohttp.ClientSession() as session:
                async with session.put(f"http://127.0.0.1:{port}/json/new?about:blank") as made:
                    target = await made.json()
                async with session.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as socket:
                    yield Page(socket)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # the browser and every helper it started
            await process.wait()


async def _devtools_port(announced: Path) -> int:
    for _ in range(600):
        if announced.exists() and announced.read_text().strip():
            return int(announced.read_text().split()[0])
        await asyncio.sleep(0.05)
    raise AssertionError("Chromium did not open its DevTools port")
