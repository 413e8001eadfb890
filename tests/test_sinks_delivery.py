"""Webhook and command sinks, and the delivery policy, against real receivers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import json
import shutil
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jsonpatch
import pytest
from aiohttp import web

from pollerd.cli import main
from pollerd.commands.deliveries import collect_deliveries
from pollerd.config import Config, parse_config
from pollerd.sim import SimServer
from tests.conftest import Receiver, Upstream, config_file, opened, require, sample, wait_for

SECRET = "whsec-3f9a1c77e2"


def config_with(tmp_path: Path, upstream: Upstream, sink: dict[str, Any], **source: Any) -> Config:
    """One http source (``files``, /a.json) delivering to one sink (``hook``)."""
    return parse_config(
        {
            "daemon": {"state_dir": str(tmp_path / "state"), "metrics": "off"},
            "sources": [
                {
                    "name": "files",
                    "kind": "http",
                    "urls": [upstream.url("/a.json")],
                    "sinks": ["hook"],
                    "interval": "1s",
                    **source,
                }
            ],
            "sinks": [{"name": "hook", "retry_base": "20ms", "retry_max": "50ms", **sink}],
        }
    )


def webhook(receiver: Receiver, **keys: Any) -> dict[str, Any]:
    """A webhook sink table for the receiver."""
    return {"kind": "webhook", "url": receiver.url, "secret": SECRET, **keys}


def verify_signature(secret: str, header: str, body: bytes, tolerance: float = 300) -> bool:
    """The README's recipe, verbatim: what a receiver runs."""
    fields = dict(part.split("=", 1) for part in header.split(","))
    expected = hmac.new(secret.encode(), fields["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    fresh = abs(time.time() - int(fields["t"])) <= tolerance
    return fresh and hmac.compare_digest(expected, fields["v1"])


async def publish_and_poll(upstream: Upstream, config: Config, *bodies: bytes) -> None:
    """Publish each body in turn and record it (one `once` cycle each, deliveries tried)."""
    if "/a.json" not in upstream.host.files:
        upstream.host.add("/a.json")
    for body in bodies:
        upstream.host.publish("/a.json", body)
        async with opened(config) as daemon:
            await daemon.run_once()


async def test_signature_verifies_with_the_documented_recipe(
    upstream: Upstream, receiver: Receiver, tmp_path: Path
) -> None:
    """The signature checks out with the secret, not with another one or another body."""
    config = config_with(tmp_path, upstream, webhook(receiver))
    await publish_and_poll(upstream, config, b'{"v": 1}')
    [request] = receiver.requests
    header = request.headers["X-Pollerd-Signature"]
    assert verify_signature(SECRET, header, request.body)
    assert not verify_signature("another-secret", header, request.body)
    assert not verify_signature(SECRET, header, request.body + b" ")
    assert request.body == b'{"v": 1}'  # body = payload: the bytes as served
    assert request.headers["Idempotency-Key"] == request.headers["X-Pollerd-Event-Id"]
    assert request.headers["X-Pollerd-Resource"] == "a.json"


async def test_500s_are_retried_with_the_same_idempotency_key(
    upstream: Upstream, receiver: Receiver, tmp_path: Path
) -> None:
    """500, 500, 500, then 200: delivered, one key throughout."""
    receiver.answers = [(500, {})] * 3
    config = config_with(tmp_path, upstream, webhook(receiver))
    upstream.file("/a.json", b'{"v": 1}')
    async with opened(config) as daemon:
        daemon.deliverer.start()
        await daemon.pollers["files"].poll()  # the change wakes the delivery loop
        await wait_for(lambda: len(receiver.requests) == 4)
        await wait_for(
            lambda: sample(daemon, "pollerd_deliveries_total", sink="hook", outcome="delivered") == 1
        )
    assert len({r.headers["Idempotency-Key"] for r in receiver.requests}) == 1


async def test_retry_after_is_waited_for(upstream: Upstream, receiver: Receiver, tmp_path: Path) -> None:
    """429 with Retry-After: 3: the next attempt comes no sooner."""
    receiver.answers = [(429, {"Retry-After": "3"})]
    config = config_with(tmp_path, upstream, webhook(receiver))
    upstream.file("/a.json", b'{"v": 1}')
    async with opened(config) as daemon:
        daemon.deliverer.start()
        await daemon.pollers["files"].poll()
        await wait_for(lambda: len(receiver.requests) == 2, timeout=30)
    first, second = receiver.requests
    assert second.at - first.at >= 2.9


async def test_a_404_is_dead_lettered_and_redelivered_on_request(
    upstream: Upstream, receiver: Receiver, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """404: dead at once with the status; `pollerd redeliver` sends it again."""
    receiver.answers = [(404, {})]
    config = config_with(tmp_path, upstream, webhook(receiver))
    await publish_and_poll(upstream, config, b'{"v": 1}')
    report = (await collect_deliveries(config))["hook"]
    assert report["counts"]["dead"] == 1
    [dead] = report["dead"]
    assert dead["last_error"].startswith("HTTP 404: nope")
    path = config_file(
        tmp_path,
        [upstream.url("/a.json")],
        sink=(f'[[sinks]]\nname = "hook"\nkind = "webhook"\nurl = "{receiver.url}"\nsecret = "{SECRET}"\n'),
        sink_name="hook",
    )
    assert main(["redeliver", "-c", str(path), dead["event_id"]]) == 0
    async with opened(config) as daemon:
        assert await daemon.run_once()
    assert len(receiver.requests) == 2
    assert (await collect_deliveries(config))["hook"]["counts"]["delivered"] == 1
    assert main(["redeliver", "-c", str(path), "--dead"]) == 1  # nothing dead any more


async def test_two_pending_versions_arrive_in_order(
    upstream: Upstream, receiver: Receiver, tmp_path: Path
) -> None:
    """The receiver is down while two versions are recorded; then they arrive v1, v2."""
    receiver.answers = [(503, {})] * 2
    config = config_with(tmp_path, upstream, webhook(receiver))
    await publish_and_poll(upstream, config, b'{"v": 1}', b'{"v": 2}')
    async with opened(config) as daemon:
        await daemon.run_once()
    assert [r.body for r in receiver.requests if r.body] == [
        b'{"v": 1}',
        b'{"v": 1}',
        b'{"v": 1}',
        b'{"v": 2}',
    ]


async def test_coalesce_delivers_the_newest_and_records_the_others(
    upstream: Upstream, receiver: Receiver, tmp_path: Path
) -> None:
    """Three versions pending with coalesce = true: only v3 is sent; v1, v2 superseded."""
    receiver.answers = [(503, {})] * 3
    config = config_with(tmp_path, upstream, webhook(receiver, coalesce=True))
    await publish_and_poll(upstream, config, b'{"v": 1}', b'{"v": 2}', b'{"v": 3}')
    async with opened(config) as daemon:
        await daemon.run_once()
    counts = (await collect_deliveries(config))["hook"]["counts"]
    assert counts == {"pending": 0, "delivered": 1, "filtered": 0, "dead": 0, "superseded": 2}
    assert receiver.requests[-1].body == b'{"v": 3}'


async def test_an_outbox_over_its_byte_limit_coalesces(
    upstream: Upstream, receiver: Receiver, tmp_path: Path
) -> None:
    """Backpressure: over max_outbox_bytes, older versions are superseded (recorded, not lost)."""
    receiver.answers = [(503, {})] * 3
    config = config_with(tmp_path, upstream, webhook(receiver, max_outbox_bytes=20))
    await publish_and_poll(
        upstream, config, b'{"v": 1, "pad": 1}', b'{"v": 2, "pad": 2}', b'{"v": 3, "pad": 3}'
    )  # each 19 bytes: two pending are over 20
    async with opened(config) as daemon:
        await daemon.run_once()
    assert [r.body for r in receiver.requests] == [
        b'{"v": 1, "pad": 1}',
        b'{"v": 2, "pad": 2}',
        b'{"v": 3, "pad": 3}',
        b'{"v": 3, "pad": 3}',
    ]
    counts = (await collect_deliveries(config))["hook"]["counts"]
    assert counts == {"pending": 0, "delivered": 1, "filtered": 0, "dead": 0, "superseded": 2}


async def test_patch_bodies_rebuild_each_version(
    upstream: Upstream, receiver: Receiver, tmp_path: Path
) -> None:
    """body = "patch": applying each patch to the receiver's copy gives the new JSON exactly."""
    versions = [
        {"a": 1, "list": [1, 2]},
        {"a": 2, "list": [1, 2, 3], "new": {"x": True}},
        {"list": [3], "new": {"x": False}},
    ]
    config = config_with(tmp_path, upstream, webhook(receiver, body="patch"))
    await publish_and_poll(upstream, config, *(json.dumps(v).encode() for v in versions))
    document: Any = None
    base = "none"
    for request, expected in zip(receiver.requests, versions, strict=True):
        assert request.headers["Content-Type"] == "application/json-patch+json"
        assert request.headers["X-Pollerd-Base-Sha256"] == base
        document = jsonpatch.apply_patch(document, json.loads(request.body))
        assert document == expected
        base = hashlib.sha256(json.dumps(expected).encode()).hexdigest()


async def test_event_bodies_inline_small_payloads(
    upstream: Upstream, receiver: Receiver, tmp_path: Path
) -> None:
    """body = "event": the event JSON, the payload inline up to inline_max_bytes."""
    config = config_with(tmp_path, upstream, webhook(receiver, body="event", inline_max_bytes=30))
    await publish_and_poll(upstream, config, b'{"v": 1}', b'{"v": 2, "padding": "xxxxxxxxxxxxxxx"}')
    small, large = receiver.bodies()
    assert small["payload"] == {"v": 1} and small["sequence"] == 1
    assert large["payload_omitted"] is True and "payload" not in large


async def test_max_attempts_dead_letters(upstream: Upstream, receiver: Receiver, tmp_path: Path) -> None:
    """A receiver that keeps failing: after max_attempts the delivery is dead, not retried."""
    receiver.answers = [(500, {})] * 10
    config = config_with(tmp_path, upstream, webhook(receiver, max_attempts=2))
    await publish_and_poll(upstream, config, b'{"v": 1}')
    async with opened(config) as daemon:
        await daemon.run_once()
        await daemon.run_once()
    assert len(receiver.requests) == 2
    assert (await collect_deliveries(config))["hook"]["counts"]["dead"] == 1


def command(tmp_path: Path, script: str, **keys: Any) -> dict[str, Any]:
    """A command sink running a small Python script."""
    path = tmp_path / "hook.py"
    path.write_text(script)
    return {"kind": "command", "command": [sys.executable, str(path)], **keys}


async def test_a_command_gets_the_payload_and_the_event(upstream: Upstream, tmp_path: Path) -> None:
    """stdin carries the payload, POLLERD_* the event; exit 0 acknowledges."""
    log = tmp_path / "ran.jsonl"
    script = (
        "import json, os, sys\n"
        f"with open({str(log)!r}, 'a') as f:\n"
        "    f.write(json.dumps({'stdin': sys.stdin.read(), 'id': os.environ['POLLERD_EVENT_ID'],"
        " 'seq': os.environ['POLLERD_SEQUENCE']}) + '\\n')\n"
    )
    config = config_with(tmp_path, upstream, command(tmp_path, script))
    await publish_and_poll(upstream, config, b'{"v": 1}')
    [ran] = [json.loads(line) for line in log.read_text().splitlines()]
    assert ran["stdin"] == '{"v": 1}' and ran["seq"] == "1"


async def test_a_failing_command_is_retried_and_a_hanging_one_killed(
    upstream: Upstream, tmp_path: Path
) -> None:
    """Exit 1 is a failure to retry; a command past its timeout is killed (and retried)."""
    marker = tmp_path / "count"
    script = (
        "import pathlib, sys, time\n"
        f"p = pathlib.Path({str(marker)!r})\n"
        "n = int(p.read_text()) if p.exists() else 0\n"
        "p.write_text(str(n + 1))\n"
        "if n == 0: sys.exit(1)\n"
        "if n == 1: time.sleep(60)\n"
    )
    config = config_with(tmp_path, upstream, command(tmp_path, script, timeout="1s"))
    started = time.monotonic()
    await publish_and_poll(upstream, config, b'{"v": 1}')
    async with opened(config) as daemon:
        assert not await daemon.run_once()  # the hang, killed after 1 s
        assert await daemon.run_once()
    assert marker.read_text() == "3"
    assert time.monotonic() - started < 30
    assert (await collect_deliveries(config))["hook"]["counts"]["delivered"] == 1


async def test_the_webhook_secret_never_appears_in_logs(
    upstream: Upstream,
    receiver: Receiver,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Not in log lines (failures included) nor the state directory."""
    receiver.answers = [(500, {}), (404, {})]
    config = config_with(tmp_path, upstream, webhook(receiver))
    await publish_and_poll(upstream, config, b'{"v": 1}', b'{"v": 2}')
    captured = capsys.readouterr()
    for text in (captured.out, captured.err, caplog.text):
        assert SECRET not in text
    for path in (tmp_path / "state").rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes()


async def test_a_dead_receiver_delays_nothing_else(
    upstream: Upstream, receiver: Receiver, tmp_path: Path
) -> None:
    """A receiver that hangs: polling and the other sink go on."""
    hanging = Receiver()

    async def never(request: web.Request) -> web.Response:
        await asyncio.sleep(4)  # longer than the test needs; the server's close waits for it
        return web.Response()

    server = SimServer()
    app = web.Application()
    app.router.add_post("/hook", never)
    hanging.url = await server.serve(app) + "/hook"
    config = parse_config(
        {
            "daemon": {"state_dir": str(tmp_path / "state"), "metrics": "off"},
            "sources": [
                {
                    "name": "files",
                    "kind": "http",
                    "urls": [upstream.url("/a.json")],
                    "sinks": ["stuck", "hook"],
                    "interval": "100ms",
                }
            ],
            "sinks": [
                {"name": "stuck", "kind": "webhook", "url": hanging.url, "secret": SECRET, "timeout": "30s"},
                {"name": "hook", "kind": "webhook", "url": receiver.url, "secret": SECRET},
            ],
        }
    )
    upstream.host.add("/a.json")
    try:
        async with opened(config) as daemon:
            daemon.deliverer.start()
            daemon.scheduler.add("files", 0.1, 0, daemon.pollers["files"].poll)
            daemon.scheduler.start()
            try:
                for n in range(1, 4):
                    upstream.host.publish("/a.json", f'{{"v": {n}}}'.encode())
                    await wait_for(functools.partial(lambda n: len(receiver.requests) == n, n))
            finally:
                daemon.scheduler.shutdown()
                await daemon.deliverer.stop(0.1)
        assert [r.body for r in receiver.requests] == [b'{"v": 1}', b'{"v": 2}', b'{"v": 3}']
    finally:
        await server.close()


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (and its key), made with openssl."""
    require(shutil.which("openssl") is not None, "openssl")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


async def test_tls_is_verified_and_a_ca_bundle_can_be_given(
    upstream: Upstream, tmp_path: Path, certificate: tuple[Path, Path]
) -> None:
    """A receiver with a self-signed certificate: refused (and retried) until ca_bundle names it."""
    cert, key = certificate
    hook = Receiver()
    app = web.Application()
    app.router.add_post("/hook", hook.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    url = f"https://127.0.0.1:{runner.addresses[0][1]}/hook"
    try:
        hook.url = url
        config = config_with(tmp_path, upstream, webhook(hook))
        await publish_and_poll(upstream, config, b'{"v": 1}')
        assert hook.requests == []
        assert (await collect_deliveries(config))["hook"]["counts"]["pending"] == 1  # retried, not dead
        trusted = config_with(tmp_path, upstream, webhook(hook, ca_bundle=str(cert)))
        async with opened(trusted) as daemon:
            assert await daemon.run_once()
        assert [r.body for r in hook.requests] == [b'{"v": 1}']
    finally:
        await runner.cleanup()


async def test_redirects_are_not_followed_and_old_events_expire(
    upstream: Upstream, receiver: Receiver, tmp_path: Path
) -> None:
    """A 302 is a refusal (dead letter, not followed); max_age dead-letters what waited too long."""
    receiver.answers = [(302, {"Location": "http://127.0.0.1:9/elsewhere"}), (500, {})]
    config = config_with(tmp_path, upstream, webhook(receiver, max_age="200ms"))
    await publish_and_poll(upstream, config, b'{"v": 1}', b'{"v": 2}')
    await asyncio.sleep(0.3)
    async with opened(config) as daemon:
        await daemon.run_once()
    dead = (await collect_deliveries(config))["hook"]["dead"]
    assert [d["last_error"].split(" (")[0] for d in dead] == ["HTTP 302: nope", "older than max_age"]
    assert "redirects are not followed" in dead[0]["last_error"]
    assert len(receiver.requests) == 2
