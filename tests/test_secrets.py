"""Secrets never leave the process: every configured secret, in every form it travels in, is
masked in logs, the state, the outbox, the status page and JSON, metrics and the commands' output,
also a secret that a reload added."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from urllib.parse import quote, quote_plus

import aiohttp
from aiohttp import web

from pollerd.core.masking import forms
from pollerd.sim import SimServer
from tests.conftest import wait_for
from tests.test_crash import pollerd
from tests.test_tasks import free_port

DC_TOKEN = "dc+SECRET/7=tok"  # '+', '/' and '=' make its URL-encoded forms differ from it
HOOK_TOKEN = "Bearer hook-SECRET-41"
NEW_TOKEN = "new-SECRET-after-reload"


class Echo:
    """An upstream and a receiver that repeat what they were sent, as careless services do: a
    400 whose text holds the query string (and so the token), a 400 holding every header."""

    def __init__(self) -> None:
        self.version = 1
        self.hook_calls = 0

    def app(self) -> web.Application:
        """The routes."""
        app = web.Application()
        app.router.add_get("/api/v1/postcode/{code}/", self.postcode)
        app.router.add_get("/file.json", self.file)
        app.router.add_post("/hook", self.hook)
        return app

    async def postcode(self, request: web.Request) -> web.Response:
        """DRF's 400, echoing what it got."""
        return web.json_response({"detail": f"Could not geocode from {request.query_string}"}, status=400)

    async def file(self, request: web.Request) -> web.Response:
        """A file whose version the test moves on."""
        return web.json_response({"v": self.version})

    async def hook(self, request: web.Request) -> web.Response:
        """A receiver that refuses, quoting the headers it was sent."""
        self.hook_calls += 1
        return web.Response(status=400, text="refused: " + json.dumps(dict(request.headers)))


def config_text(tmp_path: Path, base: str, port: int, hook_headers: str) -> str:
    """A Democracy Club source and an http source into a webhook that refuses everything."""
    return f"""[daemon]
state_dir = "{tmp_path / "state"}"
metrics = "127.0.0.1:{port}"
log_format = "json"
[[sources]]
name = "dc"
kind = "democracyclub"
api = "{base}/api/v1"
auth_token = "${{DC_TOKEN}}"
postcodes = ["AA11AA"]
interval = "300ms"
backoff_base = "100ms"
backoff_max = "200ms"
sinks = ["hook"]
[[sources]]
name = "files"
kind = "http"
urls = ["{base}/file.json"]
interval = "300ms"
sinks = ["hook"]
[[sinks]]
name = "hook"
kind = "webhook"
url = "{base}/hook"
secret = "hook-signing-SECRET"
max_attempts = 1
headers = {hook_headers}
"""


async def text_of(url: str) -> str:
    """The body of a GET."""
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return await response.text()


async def run(*args: str, env: dict[str, str]) -> str:
    """``pollerd ARGS`` as a process; its stdout and stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pollerd",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    return out.decode() + err.decode()


async def test_no_form_of_any_secret_leaves_the_process(tmp_path: Path) -> None:
    """The services echo the token and the headers back; the daemon keeps and shows their
    errors, masked. After a reload adds a header, that secret is masked too."""
    echo = Echo()
    server = SimServer()
    base = await server.serve(echo.app())
    port = free_port()
    env = {**os.environ, "DC_TOKEN": DC_TOKEN, "HOOK_TOKEN": HOOK_TOKEN, "NEW_TOKEN": NEW_TOKEN}
    path = tmp_path / "pollerd.toml"
    path.write_text(config_text(tmp_path, base, port, '{ Authorization = "${HOOK_TOKEN}" }'))
    daemon = await pollerd("run", "-c", str(path), env=env)
    seen: list[str] = []
    try:
        await wait_for(lambda: echo.hook_calls >= 1, timeout=30)
        path.write_text(
            config_text(tmp_path, base, port, '{ Authorization = "${HOOK_TOKEN}", X-New = "${NEW_TOKEN}" }')
        )
        daemon.send_signal(signal.SIGHUP)
        await asyncio.sleep(1.0)
        calls = echo.hook_calls
        echo.version = 2
        await wait_for(lambda: echo.hook_calls > calls, timeout=30)
        await asyncio.sleep(1.0)
        for page in ("/status", "/status.json", "/metrics", "/healthz"):
            seen.append(await text_of(f"http://127.0.0.1:{port}{page}"))
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(daemon.communicate(), timeout=60)
        await server.close()
    log = stderr.decode()
    seen.append(log)
    for command in ("status", "deliveries"):
        seen.append(await run(command, "-c", str(path), env=env))
        seen.append(await run(command, "-c", str(path), "--json", env=env))
    state = b"".join(p.read_bytes() for p in (tmp_path / "state").glob("pollerd.sqlite3*"))
    seen.append(state.decode("utf-8", "replace"))
    assert "Could not geocode" in log and "refused: " in log  # the echoes were there to mask
    assert "X-New" in seen[-1] or "X-New" in log  # the reloaded header's echo was kept
    for secret in (DC_TOKEN, HOOK_TOKEN.removeprefix("Bearer "), NEW_TOKEN):
        for form in {secret, quote(secret, safe=""), quote_plus(secret)} | forms(secret):
            leaks = [i for i, text in enumerate(seen) if form in text]
            assert leaks == [], (secret, form, leaks)
