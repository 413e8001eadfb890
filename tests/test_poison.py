"""Poison payloads: refused before any sink sees them, never leaking temporary files, and a payload
a sink cannot handle is dead-lettered instead of blocking that sink for ever."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pollerd.config import parse_config
from pollerd.core.model import Event
from pollerd.core.payload import MAX_DEPTH, PayloadRejected, strict_json
from pollerd.delivery.deliverer import Deliverer
from pollerd.store.blobs import BlobStore
from pollerd.store.sqlite import queries
from pollerd.store.sqlite.store import SqliteStore
from pollerd.telemetry.metrics import Metrics
from pollerd.versions.payload import Payload
from tests.conftest import ConfigFactory, Receiver, Upstream, opened, sample, stdout_events

DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (DEEP, f"nested more than {MAX_DEPTH} deep"),
        (b'{"turnout": NaN}', "NaN is not a JSON number"),
        (b'{"votes": Infinity}', "Infinity is not a JSON number"),
        (b'{"votes": -Infinity}', "-Infinity is not a JSON number"),
    ],
)
async def test_poison_json_is_refused_counted_and_leaves_nothing_behind(
    upstream: Upstream,
    make_config: ConfigFactory,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    body: bytes,
    words: str,
) -> None:
    """Three polls of a poison body: refused as invalid_json each time, no crash, no sink sees
    it, no temporary file left; the good version after it is delivered."""
    url = upstream.file("/a.json", body)
    async with opened(make_config([url], backoff_base="1ms", backoff_max="1ms")) as daemon:
        for _ in range(3):
            assert not await daemon.run_once()
        assert sample(daemon, "pollerd_rejected_payloads_total", source="files", reason="invalid_json") == 3
        assert words in (daemon.pollers["files"].states["a.json"].last_error or "")
        assert list((tmp_path / "state" / "tmp").iterdir()) == []
        upstream.host.publish("/a.json", b'{"turnout": 0.45}')
        assert await daemon.run_once()
    captured = capsys.readouterr()
    assert [e["sequence"] for e in stdout_events(captured.out)] == [1]
    assert "invalid_json" in captured.err and "poll crashed" not in captured.err  # said, no crash


async def test_a_deep_text_payload_reaches_an_event_webhook_as_bytes(
    upstream: Upstream, receiver: Receiver, tmp_path: Path, make_config: ConfigFactory
) -> None:
    """As a text resource the deep body is a valid version; the webhook's event body carries it
    as base64 instead of crashing on it, and the next version follows."""
    url = upstream.file("/a.txt", DEEP)
    config = make_config([url], format="text")
    raw = config.model_dump(mode="json", by_alias=True)
    raw["sinks"] = [
        {
            "name": "out",
            "kind": "webhook",
            "url": receiver.url,
            "body": "event",
            "secret": "s3cret-for-the-test",
        }
    ]
    raw["sources"][0]["sinks"] = ["out"]
    raw["daemon"]["state_dir"] = str(tmp_path / "state")
    async with opened(parse_config(raw)) as daemon:
        assert await daemon.run_once()
        upstream.host.publish("/a.txt", b"plain")
        assert await daemon.run_once()
    bodies = [json.loads(r.body) for r in receiver.requests]
    assert "payload_base64" in bodies[0] and "payload" not in bodies[0]
    assert bodies[1]["sequence"] == 2


class Crashing:
    """A sink with a bug for one payload (as a sink with a parser bug would be)."""

    name = "crashing"

    def __init__(self) -> None:
        self.delivered: list[int] = []

    async def deliver(self, event: Event, payload: Payload, epoch: int | None = None) -> None:
        """Fail on version 1 with an error that is no DeliveryFailed; take the rest."""
        if event.sequence == 1:
            raise ValueError("cannot handle this payload")
        self.delivered.append(event.sequence)

    async def close(self) -> None:
        """Nothing to release."""


async def test_a_payload_a_sink_cannot_handle_is_dead_lettered_not_retried_forever(
    upstream: Upstream, make_config: ConfigFactory, tmp_path: Path
) -> None:
    """Version 1 makes the sink raise: it goes to the dead letters with the reason at once, and
    version 2 of the same resource is delivered (it was blocked behind it before)."""
    url = upstream.file("/a.json", b'{"v": 1}')
    (tmp_path / "out").write_text("a file where the sink's folder should be: both stay pending")
    async with opened(make_config([url])) as daemon:
        await daemon.run_once()
        upstream.host.publish("/a.json", b'{"v": 2}')
        await daemon.run_once()
    store = SqliteStore(tmp_path / "state")
    await store.open()
    sink = Crashing()
    try:
        policy = make_config([url]).sinks[0].model_copy(update={"name": "out"})
        deliverer = Deliverer(store, BlobStore(tmp_path / "state"), {"out": sink}, {"out": policy}, Metrics())
        assert await deliverer.drain() == 1
        assert sink.delivered == [2]
        dead = await store.run(queries.list_deliveries, "out", ("dead",), 10)
    finally:
        await store.close()
    assert [row.sequence for row in dead] == [1]
    assert dead[0].last_error == (
        "the sink could not handle this event: cannot handle this payload (ValueError)"
    )


def test_strict_json_keeps_what_is_json() -> None:
    """A BOM, deep-but-sane nesting and big numbers are fine."""
    nested = b"[" * MAX_DEPTH + b"]" * MAX_DEPTH
    assert strict_json(b"\xef\xbb\xbf" + b'{"a": 1e308}') == {"a": 1e308}
    assert strict_json(nested) is not None
    with pytest.raises(PayloadRejected):
        strict_json(b"[" + nested + b"]")


async def test_broken_answers_are_described_in_words(make_config: ConfigFactory, tmp_path: Path) -> None:
    """A redirect to nowhere valid, headers too large, a refused scheme: each resource's error
    says what happened, not an exception's class name."""
    from aiohttp import web

    from pollerd.sim import SimServer

    async def bad_location(request: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": "http://[not-an-address/x"})

    async def huge_headers(request: web.Request) -> web.Response:
        return web.Response(text="{}", headers={"X-Padding": "x" * 20_000})

    async def to_ftp(request: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": "ftp://127.0.0.1/x.json"})

    app = web.Application()
    app.router.add_get("/moved.json", bad_location)
    app.router.add_get("/huge.json", huge_headers)
    app.router.add_get("/ftp.json", to_ftp)
    server = SimServer()
    base = await server.serve(app)
    try:
        config = make_config(
            [f"{base}/moved.json", f"{base}/huge.json", f"{base}/ftp.json"], strategy="always"
        )
        async with opened(config) as daemon:
            assert not await daemon.run_once()
            errors = {rid: s.last_error or "" for rid, s in daemon.pollers["files"].states.items()}
    finally:
        await server.close()
    assert "the redirect's Location is not a valid URL" in errors["moved.json"]
    assert "response headers too large or malformed" in errors["huge.json"]
    assert "the scheme ftp is not allowed" in errors["ftp.json"]
    assert not any(re.search(r"\b[A-Z][A-Za-z]+(Error|Exception)\b", e) for e in errors.values())
