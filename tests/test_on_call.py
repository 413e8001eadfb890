"""The on-call's night: no secret in any surface (chat URLs, recordings, every encoding), bad
input refused (numbers out of range, replay orders, damaged recordings), the tools that work from
a shell without the service's secrets, redelivery of any version of the night, one alert per
outage, a status page per source, and a demo that starts afresh."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from pollerd.cli import main
from pollerd.commands.demo import start_afresh
from pollerd.config import ConfigError, load_config, parse_config
from pollerd.core.masking import MASKED, Masker
from pollerd.daemon.retention import RetentionSweep
from pollerd.record.archive import read_archive
from pollerd.replay.server import Replay, ReplayOptions
from pollerd.sim import SimServer
from tests.conftest import AP_KEY, Receiver, Upstream, ap_source, config_file, opened, webhook_sink


async def cli(*args: str) -> int:
    """The command line, run as from a shell while the test's servers go on answering."""
    return await asyncio.to_thread(main, list(args))


SLACK_TOKEN = "Xq7rT2vB9kLm4NpZ8sWc3YhD"  # the secret part of a Slack webhook URL
SLACK_PATH = f"/services/T0AAAAAAA/B0BBBBBBB/{SLACK_TOKEN}"


async def _echoing_channel(_request: web.Request) -> web.Response:
    """Slack's answer to a webhook that no longer exists, repeating the token alone."""
    return web.Response(status=404, text=f"no_service: unknown webhook token {SLACK_TOKEN}")


async def test_a_chat_url_echoed_by_its_service_is_masked_in_the_log_and_the_state(
    upstream: Upstream, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The chat service's error repeats the token of the webhook URL: the dead letter kept in the
    state and every log line carry ``***`` instead."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", _echoing_channel)
    server = SimServer()
    base = await server.serve(app)
    url = upstream.file("/a.json", b'{"v": 1}')
    config = parse_config(
        {
            "daemon": {"state_dir": str(tmp_path / "state"), "metrics": "off"},
            "sources": [{"name": "files", "kind": "http", "urls": [url], "sinks": ["desk"]}],
            "sinks": [
                {
                    "name": "desk",
                    "kind": "chat",
                    "format": "slack",
                    "events": "versions",
                    "url": base + SLACK_PATH,
                }
            ],
        }
    )
    try:
        async with opened(config) as daemon:
            MASKED.use(config.secret_values())  # as `run` does
            await daemon.run_once()
            dead = await daemon.store.delivery_counts("desk")
    finally:
        await server.close()
    assert dead["dead"] == 1
    with sqlite3.connect(tmp_path / "state" / "pollerd.sqlite3") as db:
        errors = [row[0] for row in db.execute("SELECT last_error FROM deliveries")]
    log = capsys.readouterr().err
    assert errors and all("***" in error and SLACK_TOKEN not in error for error in errors), errors
    assert SLACK_TOKEN not in log and "no_service" in log


def test_a_chat_url_with_a_typo_in_its_scheme_is_never_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``check-config`` and ``run`` refuse ``htps://hooks.slack.com/services/...`` naming the key
    and the scheme, never the URL."""
    path = tmp_path / "pollerd.toml"
    path.write_text(
        f'[daemon]\nstate_dir = "{tmp_path}/state"\nmetrics = "off"\n'
        '[[sources]]\nname = "s"\nkind = "http"\nurls = ["https://example.org/a.json"]\n'
        'sinks = ["desk", "cms"]\n'
        f'[[sinks]]\nname = "desk"\nkind = "chat"\nurl = "htps://hooks.slack.com{SLACK_PATH}"\n'
        f'[[sinks]]\nname = "cms"\nkind = "webhook"\nurl = "htps://cms.example{SLACK_PATH}"\nsecret = "x"\n'
    )
    assert main(["check-config", str(path)]) == 2
    assert main(["run", "-c", str(path)]) == 2
    said = capsys.readouterr()
    text = said.out + said.err
    assert (
        "sinks[0]" in text and "not an http(s) URL (its scheme is 'htps', its host 'hooks.slack.com')" in text
    )
    assert "sinks[1].url: not an http(s) URL (its scheme is 'htps'" in text, text
    assert SLACK_TOKEN not in text and "/services/" not in text


async def test_a_recorded_body_that_echoes_the_key_is_kept_masked(tmp_path: Path) -> None:
    """AP answering 400 "Invalid request for key <key>": the recording keeps the body with the
    key masked (and the request's URL and headers without it)."""

    async def refusing(request: web.Request) -> web.Response:
        key = request.headers.get("x-api-key", "")
        return web.json_response(
            {"errorCode": 400, "errorMessage": f"Invalid request for key {key}"}, status=400
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", refusing)
    server = SimServer()
    base = await server.serve(app)
    config = parse_config(
        {
            "daemon": {
                "state_dir": str(tmp_path / "state"),
                "metrics": "off",
                "record": str(tmp_path / "rec"),
            },
            "sources": [ap_source(base, ["out"], queries=[{"name": "all"}])],
            "sinks": [{"name": "out", "kind": "filesystem", "root": str(tmp_path / "out")}],
        }
    )
    try:
        async with opened(config) as daemon:
            await daemon.run_once()
    finally:
        await server.close()
    [recording] = read_archive(tmp_path / "rec")
    bodies = [recording.body(a.body) for a in recording.answers if a.body is not None]
    assert bodies and all(AP_KEY.encode() not in body for body in bodies)
    assert any(b"Invalid request for key ***" in body for body in bodies)
    raw = b"".join(gzip.decompress(p.read_bytes()) for p in (tmp_path / "rec").rglob("*.gz"))
    assert AP_KEY.encode() not in raw


@pytest.mark.parametrize("encoded", ["dc%2BTok%2Fen%3D4711", "dc%2bTok%2fen%3d4711"])
def test_a_secret_is_masked_whatever_the_case_of_its_percent_encoding(encoded: str) -> None:
    """A token with ``+``, ``/`` and ``=`` in a query string, its hex digits upper or lower case."""
    masker = Masker()
    masker.use(["dc+Tok/en=4711"])
    assert masker(f"GET /postcode/?auth_token={encoded} failed") == "GET /postcode/?auth_token=*** failed"
    assert masker.bytes(f"token={encoded}".encode()) == b"token=***"


async def test_a_number_out_of_range_never_reaches_an_event_webhook(
    upstream: Upstream, receiver: Receiver, tmp_path: Path
) -> None:
    """``1e999`` is valid JSON grammar but no double: the payload is refused (as NaN is), so no
    ``body = "event"`` webhook receives ``Infinity``; the version before stays the newest."""
    url = upstream.file("/a.json", b'{"v": 1}')
    config = parse_config(
        {
            "daemon": {"state_dir": str(tmp_path / "state"), "metrics": "off"},
            "sources": [{"name": "files", "kind": "http", "urls": [url], "sinks": ["hook"]}],
            "sinks": [
                {"name": "hook", "kind": "webhook", "url": receiver.url, "secret": "s3cret", "body": "event"}
            ],
        }
    )
    async with opened(config) as daemon:
        await daemon.run_once()
        upstream.host.publish("/a.json", b'{"v": 1e999}')
        await daemon.run_once()
        state = daemon.pollers["files"].states["a.json"]
    assert len(receiver.requests) == 1
    assert all(b"Infinity" not in r.body for r in receiver.requests)
    assert state.sequence == 1 and "1e999" not in (state.last_error or "x")
    assert "rejected" in (state.last_error or "")


@pytest.mark.parametrize(
    "order",
    [
        b'{"speed": NaN}',
        b'{"speed": "nan"}',
        b'{"speed": Infinity}',
        b'{"speed": 1e309}',
        b'{"speed": 0}',
        b'{"speed": true}',
        b'{"jump": 5}',
        b"[1]",
        b"not json",
    ],
)
async def test_a_replay_refuses_bad_orders_and_goes_on(order: bytes, tmp_path: Path) -> None:
    """Every bad ``POST /control`` answers 400 with a reason and changes nothing: the next
    request of the replay is served as before."""
    recording = _recording(tmp_path)
    replay = Replay(read_archive(recording), ReplayOptions(2.0))
    await replay.open()
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{replay.control_url}/control", data=order) as answer:
                status, said = answer.status, await answer.json()
            async with session.get(f"{replay.control_url}/status") as answer:
                after = await answer.json()
            async with session.get(replay.local_url("https://files.example/a.json")) as answer:
                served = answer.status
    finally:
        await replay.close()
    assert status == 400 and said["error"], said
    assert after["speed"] == 2.0
    assert served == 200


def _recording(root: Path, body: bytes = b'{"v": 1}') -> Path:
    """A one-answer recording of an http source (written as the recorder writes it)."""
    folder = root / "rec" / "files"
    (folder / "bodies").mkdir(parents=True)
    sha = hashlib.sha256(body).hexdigest()
    (folder / "bodies" / f"{sha}.gz").write_bytes(gzip.compress(body))
    (folder / "source.json").write_text(
        json.dumps({"name": "files", "kind": "http", "config": {"urls": ["https://files.example/a.json"]}})
    )
    line = {"at": time.time() - 60, "method": "GET", "url": "https://files.example/a.json", "status": 200}
    (folder / "answers.jsonl").write_text(json.dumps(line | {"body": sha, "size": len(body)}) + "\n")
    return root / "rec"


@pytest.mark.parametrize("damage", ["truncated gzip", "not gzip", "other bytes", "source types"])
def test_a_damaged_recording_is_refused_at_start(
    damage: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``pollerd replay`` on a damaged recording exits 1 (it cannot start) with the file and the
    reason: no traceback, nothing served."""
    root = _recording(tmp_path)
    folder = root / "files"
    [body] = list((folder / "bodies").iterdir())
    if damage == "truncated gzip":
        body.write_bytes(body.read_bytes()[:-6])
    elif damage == "not gzip":
        body.write_bytes(b"plain bytes")
    elif damage == "other bytes":
        body.write_bytes(gzip.compress(b'{"v": 2}'))
    else:
        (folder / "source.json").write_text(json.dumps({"name": 7, "kind": ["http"]}))
    assert main(["replay", str(root), "--port", "0"]) == 1
    err = capsys.readouterr().err
    assert "cannot replay" in err and "Traceback" not in err, err
    assert "name must be a non-empty string" in err if damage == "source types" else str(folder) in err


@pytest.mark.parametrize("command", ["status", "deliveries", "redeliver", "healthcheck"])
def test_the_on_call_tools_need_none_of_the_service_secrets(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A config whose secrets are environment variables and systemd credentials that this shell
    does not have: the tools run (``redeliver`` and ``healthcheck`` exit 1 for their own reasons,
    never 2 for a secret)."""
    monkeypatch.delenv("AP_API_KEY", raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    path = tmp_path / "pollerd.toml"
    path.write_text(
        f'[daemon]\nstate_dir = "{tmp_path}/state"\nmetrics = "127.0.0.1:9"\n'
        '[[sources]]\nname = "ap"\nkind = "ap"\napi_key = "${AP_API_KEY}"\nelection_date = "2026-11-03"\n'
        'sinks = ["desk"]\n[[sources.queries]]\nname = "all"\n'
        '[[sinks]]\nname = "desk"\nkind = "chat"\nurl = "https://hooks.slack.com/x"\n'
        'access_token_file = "${CREDENTIALS_DIRECTORY}/matrix"\nformat = "matrix"\nroom = "!r:example.org"\n'
    )
    args = {
        "status": ["status", "-c", str(path)],
        "deliveries": ["deliveries", "-c", str(path)],
        "redeliver": ["redeliver", "-c", str(path), "--dead"],
        "healthcheck": ["healthcheck", "-c", str(path)],
    }[command]
    code = main(args)
    said = capsys.readouterr()
    assert code in (0, 1), said.err
    assert "is not set" not in said.err and "AP_API_KEY" not in said.err


async def test_any_version_of_the_night_can_be_redelivered_until_its_window_ends(
    upstream: Upstream, receiver: Receiver, tmp_path: Path
) -> None:
    """Three versions delivered: ``redeliver`` of the first sends its own bytes again (it is
    kept for ``redeliver_keep``); once its window has ended, the sweep lets it go and
    ``redeliver`` says why it cannot; ``deliveries`` says what is kept."""
    url = upstream.file("/a.json", b'{"v": 1}')
    config = config_file(tmp_path, [url], sink=webhook_sink(receiver.url), sink_name="hook")
    assert await cli("once", "-c", str(config)) == 0
    for version in (2, 3):
        upstream.host.publish("/a.json", json.dumps({"v": version}).encode())
        assert await cli("once", "-c", str(config)) == 0
    assert [r.body for r in receiver.requests] == [b'{"v": 1}', b'{"v": 2}', b'{"v": 3}']
    first = receiver.requests[0].headers["X-Pollerd-Event-Id"]
    assert await cli("redeliver", "-c", str(config), first) == 0
    assert await cli("once", "-c", str(config)) == 0
    assert receiver.requests[-1].body == b'{"v": 1}'
    loaded = load_config(config)
    shorter = loaded.model_copy(update={"daemon": loaded.daemon.model_copy(update={"redeliver_keep": 0.5})})
    async with opened(shorter) as daemon:
        await asyncio.sleep(0.6)
        swept = await RetentionSweep(daemon.store, daemon.blobs).sweep()
        assert swept >= 3
        assert not daemon.blobs.path(_sha(b'{"v": 1}')).exists()
        assert daemon.blobs.path(_sha(b'{"v": 3}')).exists()  # the current version
    assert await cli("redeliver", "-c", str(config), first) == 1


def _sha(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


async def test_deliveries_says_what_is_kept_for_redelivery(
    upstream: Upstream, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The report ends with the redelivery window."""
    config = config_file(
        tmp_path, [upstream.url("/a.json")], daemon='metrics = "off"\nredeliver_keep = "12h"'
    )
    upstream.file("/a.json", b"{}")
    assert await cli("once", "-c", str(config)) == 0
    capsys.readouterr()
    assert await cli("deliveries", "-c", str(config)) == 0
    assert (
        "kept for redelivery (daemon.redeliver_keep): every version of the last 12 h"
        in capsys.readouterr().out
    )


def test_the_demo_starts_afresh(tmp_path: Path) -> None:
    """A second demo removes the first one's state and what it wrote for its sources, and
    nothing else of the folder."""
    text = (Path(__file__).resolve().parent.parent / "pollerd" / "sim" / "data" / "demo.toml").read_text()
    text = text.replace('"state/demo"', f'"{tmp_path}/state"').replace(
        'root = "out"', f'root = "{tmp_path}/out"'
    )
    path = tmp_path / "demo.toml"
    path.write_text(text)
    config = load_config(path)
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "pollerd.sqlite3").write_bytes(b"")
    (tmp_path / "out" / "nrw2023" / "x").mkdir(parents=True)
    (tmp_path / "out" / "mine").mkdir()
    said = start_afresh(config)
    assert said and "starting afresh" in said[0]
    assert not (tmp_path / "state").exists() and not (tmp_path / "out" / "nrw2023").exists()
    assert (tmp_path / "out" / "mine").exists()


def test_text_on_stdout_tells_the_news_by_default(tmp_path: Path) -> None:
    """``format = "text"`` subscribes to election events unless ``events`` says otherwise."""
    raw: dict[str, Any] = {
        "daemon": {"state_dir": str(tmp_path)},
        "sources": [
            {"name": "s", "kind": "http", "urls": ["https://example.org/a.json"], "sinks": ["c", "j"]}
        ],
        "sinks": [{"name": "c", "kind": "stdout", "format": "text"}, {"name": "j", "kind": "stdout"}],
    }
    config = parse_config(raw)
    assert config.sinks[0].events == ["versions", "election"]
    assert config.sinks[1].events == ["versions"]


def test_the_shipped_configs_keep_their_state_at_an_absolute_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """``pollerd status`` from any folder finds the state the shipped configs write."""
    for name in ("AP_API_KEY", "DC_API_KEY", "CMS_TOKEN", "WEBHOOK_SECRET"):
        monkeypatch.setenv(name, "x")
    monkeypatch.setenv("SLACK_WEBHOOK_URL", "https://hooks.slack.example/services/T0/B0/x")
    monkeypatch.setenv("RESULTS_DATABASE_URL", "postgresql://results@db.internal/results")
    root = Path(__file__).resolve().parent.parent / "config"
    for path in sorted(root.glob("*.toml")):
        try:
            config = load_config(path, [])
        except ConfigError as exc:
            raise AssertionError(f"{path.name}: {exc}") from None
        assert config.daemon.state_dir.is_absolute(), path.name
