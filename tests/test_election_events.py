"""Election events end to end: the simulated nights (AP, FSO, Democracy Club) into a real local
receiver posing as Slack, Teams or Matrix; subscriptions and filters; a restart mid-night; a
channel that says wait; the status page's panel; and the config's refusals."""

from __future__ import annotations

import asyncio
import json
import time
import tomllib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from pollerd.config import Config, ConfigError, parse_config
from pollerd.core.cantons import canton_name
from pollerd.daemon.status_html import render
from pollerd.sim import Fault, SimServer
from pollerd.sim.ap import ApServer
from pollerd.sim.ap_election import RETRACTED_RACE, ApElection
from pollerd.sim.dc_world import STEPS, DcWorld
from pollerd.sim.democracyclub import DcServer
from pollerd.sim.fso_content import CANTONS, SMALL
from pollerd.sim.night import ElectionNight
from tests.conftest import (
    AP_KEY,
    DC_KEY,
    Receiver,
    Upstream,
    ap_source,
    dc_source,
    fso_source,
    one_source,
    opened,
    wait_for,
)

TOKEN = "syt_matrix-token-4f2a9c"
ROOM = "!desk:matrix.example.org"


@dataclass
class Post:
    """One request the channel received."""

    at: float
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body)


@dataclass
class Channel:
    """A chat service on 127.0.0.1: Slack's and Teams' incoming webhooks, Matrix's send
    endpoint and a plain-text hook. Records every request, answers from a script (then 200)."""

    base: str = ""
    answers: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    posts: list[Post] = field(default_factory=list)
    got: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        """Record, answer the next scripted status."""
        post = Post(
            time.monotonic(), request.method, request.raw_path, dict(request.headers), await request.read()
        )
        self.posts.append(post)
        self.got.set()
        status, headers = self.answers.pop(0) if self.answers else (200, {})
        body = json.dumps({"event_id": "$1"} if status == 200 else {"errcode": "M_LIMIT_EXCEEDED"})
        return web.Response(status=status, text=body, headers=headers, content_type="application/json")

    def lines(self, form: str) -> list[str]:
        """Every line of every message, as the service would show it."""
        found: list[str] = []
        for post in self.posts:
            if form == "teams":
                card = post.json()["attachments"][0]["content"]
                found += [block["text"] for block in card["body"] if block.get("weight") != "Bolder"]
            else:
                text = post.body.decode() if form == "text" else post.json()[_TEXT_KEY[form]]
                found += [line for line in text.splitlines() if not line.endswith(":")]
        return found


_TEXT_KEY = {"slack": "text", "matrix": "body"}


@pytest.fixture
async def channel() -> AsyncIterator[Channel]:
    """The chat service, on a free port."""
    server = SimServer()
    chat = Channel()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", chat.handle)
    chat.base = await server.serve(app)
    yield chat
    await server.close()


@pytest.fixture
async def ap_night() -> AsyncIterator[tuple[ApServer, str]]:
    """The AP replay with its whole night (180 steps: calls, one retraction)."""
    server = SimServer()
    replay = ApServer(ApElection(), {AP_KEY}, quota_per_minute=100_000)
    yield replay, await server.serve(replay.app())
    await server.close()


def chat_sink(channel: Channel, form: str, **keys: Any) -> dict[str, Any]:
    """A chat sink table for ``channel`` in ``form``."""
    table: dict[str, Any] = {"name": "desk", "kind": "chat", "format": form, "group_window": "50ms", **keys}
    if form == "matrix":
        table |= {"url": channel.base, "room": ROOM, "access_token": "${MATRIX_TOKEN}"}
    else:
        table["url"] = f"{channel.base}/hooks/{form}"
    return table


def ap_config(tmp_path: Path, base: str, sink: dict[str, Any], interval: str = "30s") -> Config:
    """One AP source with two overlapping queries (Pennsylvania, and every Senate race)."""
    queries = [{"name": "pennsylvania", "statePostal": "PA"}, {"name": "senate", "officeID": "S"}]
    source = ap_source(base, [sink["name"]], interval=interval, quota_per_minute=100_000, queries=queries)
    return one_source(tmp_path, source, [sink])


async def play_ap(config: Config, replay: ApServer, steps: range) -> None:
    """Poll once per two steps of the night (and deliver)."""
    async with opened(config) as daemon:
        for _ in steps:
            replay.election.advance(2)
            assert await daemon.run_once()


@pytest.mark.parametrize("form", ["slack", "teams", "matrix"])
async def test_the_ap_night_reaches_the_channel_in_its_format(
    form: str,
    channel: Channel,
    ap_night: tuple[ApServer, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Pennsylvania's calls reach the desk (the Senate race called, retracted, called again:
    each once, though two queries carry it), in the JSON the service expects; the state and
    type filters keep Colorado, West Virginia and race_complete out; the token stays secret."""
    monkeypatch.setenv("MATRIX_TOKEN", TOKEN)
    replay, base = ap_night
    sink = chat_sink(channel, form, events=["race_called", "call_retracted", "call_changed"], states=["PA"])
    await play_ap(ap_config(tmp_path, base, sink), replay, range(90))
    lines = channel.lines(form)
    senate = [line for line in lines if "U.S. Senate" in line]
    assert len(senate) == 3, lines
    assert "AP calls U.S. Senate for Alex1 Rivera (Dem)" in senate[0]
    assert "AP retracted its call in U.S. Senate (was Alex1 Rivera, Dem)" in senate[1]
    assert "AP calls U.S. Senate" in senate[2]
    assert all(line.startswith("Pennsylvania: AP") for line in lines), lines
    assert len([line for line in lines if "AP calls" in line]) == 5  # four PA races, one called twice
    if form == "slack":
        assert all(set(post.json()) == {"text"} and post.method == "POST" for post in channel.posts)
    elif form == "teams":
        for post in channel.posts:
            message = post.json()
            assert message["type"] == "message"
            attachment = message["attachments"][0]
            assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
            assert (
                attachment["content"]["type"] == "AdaptiveCard" and attachment["content"]["version"] == "1.4"
            )
            assert all(block["type"] == "TextBlock" for block in attachment["content"]["body"])
    else:
        txns = set()
        for post in channel.posts:
            prefix = "/_matrix/client/v3/rooms/%21desk%3Amatrix.example.org/send/m.room.message/"
            assert post.method == "PUT" and post.path.startswith(prefix), post.path
            txns.add(post.path.removeprefix(prefix))
            assert post.headers["Authorization"] == f"Bearer {TOKEN}"
            assert post.json()["msgtype"] == "m.notice"
        assert len(txns) == len(channel.posts)
    assert TOKEN not in capsys.readouterr().err


async def test_a_restart_mid_night_re_announces_nothing(
    channel: Channel, ap_night: tuple[ApServer, str], tmp_path: Path
) -> None:
    """Stopping and starting again (the same state) between polls of the night: every call is
    told once, the retraction once, and the second call once."""
    replay, base = ap_night
    config = ap_config(tmp_path, base, chat_sink(channel, "text", events="election"))
    await play_ap(config, replay, range(20))
    await play_ap(config, replay, range(20, 40))
    await play_ap(config, replay, range(40, 90))
    lines = channel.lines("text")
    assert len(lines) == len(set(lines)) or _called_twice(lines), lines
    senate = [line for line in lines if line.startswith("Pennsylvania") and "U.S. Senate" in line]
    assert [line.split(":")[1].split()[1] for line in senate if "AP" in line] == [
        "calls",
        "retracted",
        "calls",
    ]
    completes = [line for line in lines if "all precincts reporting" in line]
    watched = [r for r in replay.election.races.values() if r["statePostal"] == "PA" or r["officeID"] == "S"]
    assert len(completes) == len(set(completes)) == len(watched) == 6


def _called_twice(lines: list[str]) -> bool:
    """The only repeated line allowed: the retracted race called again for the same candidate."""
    repeated = {line for line in lines if lines.count(line) > 1}
    return all("U.S. Senate" in line and line.startswith("Pennsylvania") for line in repeated)


async def test_the_channel_says_wait_and_the_backlog_goes_together(
    channel: Channel, ap_night: tuple[ApServer, str], tmp_path: Path
) -> None:
    """A 429 with Retry-After: nothing is posted before it runs out, then everything that came
    meanwhile goes in one grouped message."""
    replay, base = ap_night
    config = ap_config(tmp_path, base, chat_sink(channel, "slack", events="election"), interval="100ms")
    channel.answers = [(429, {"Retry-After": "2"})]
    replay.election.advance(70)  # several races called already
    async with opened(config) as daemon:
        stop = asyncio.Event()
        running = asyncio.create_task(daemon.run(stop))
        try:
            await asyncio.wait_for(channel.got.wait(), 30)
            channel.got.clear()
            replay.election.advance(110)  # more calls while the channel makes us wait
            await asyncio.wait_for(channel.got.wait(), 30)
        finally:
            stop.set()
            await running
    first, second = channel.posts[0], channel.posts[1]
    assert second.at - first.at >= 1.9
    first_lines = first.json()["text"].splitlines()
    second_lines = second.json()["text"].splitlines()
    assert set(first_lines[1:]) <= set(second_lines[1:])  # the refused message's lines, and more
    assert len(second_lines) > len(first_lines) and second_lines[0].endswith("election events:")


async def test_the_fso_night_tells_a_reopened_and_a_corrected_canton(
    channel: Channel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The FSO files (National Council and Council of States): the first canton to finish is
    reopened and comes back, another's finished figures are corrected, each ballot is final at
    the end; a canton filter keeps the other cantons out; five files of one ballot tell each
    story once."""
    server = SimServer()
    election = ElectionNight(SMALL)
    await election.open(server)
    content = election.content
    watched = sorted({content.reopened + 1, content.corrected + 1})
    sink = chat_sink(channel, "text", events="election", cantons=watched)
    raw = {
        "daemon": {"state_dir": str(tmp_path / "state"), "metrics": "off"},
        "sources": [fso_source(election.api_url, ["desk"])],
        "sinks": [sink],
    }
    try:
        async with opened(parse_config(raw)) as daemon:
            moment = content.reopened_from - timedelta(minutes=30)
            while not election.finished:
                election.advance_to(moment)
                await daemon.run_once()
                moment += timedelta(minutes=4)
    finally:
        await server.close()
    lines = channel.lines("text")
    reopened = str(canton_name(content.reopened + 1, "en"))  # the channel's language names it
    corrected = str(canton_name(content.corrected + 1, "en"))
    assert [line for line in lines if "reopened" in line] == [
        line for line in lines if line.startswith(f"{reopened} reopened")
    ]
    assert any(line.startswith(f"{reopened} reopened its count") and "(NRW2023)" in line for line in lines)
    story = [line.split()[1] for line in lines if line.startswith(reopened) and "(NRW2023" in line]
    assert story == ["finished", "reopened", "finished"]
    assert any(line.startswith(f"{corrected}: finished figures corrected (NRW2023") for line in lines), lines
    assert sorted(line for line in lines if "result is complete" in line) == [
        "NRW2023: every canton counted, the result is complete",
        "SRW2023: every canton counted, the result is complete",
    ]
    other = [canton_name(n + 1, "en") for n in range(len(CANTONS)) if n + 1 not in watched]
    assert not [
        line
        for line in lines
        if any(line.startswith(f"{name} ") or line.startswith(f"{name}:") for name in other)
    ]


async def test_democracy_club_tells_the_desk_what_changed(channel: Channel, tmp_path: Path) -> None:
    """The stand-in's timeline: a candidate added, a ballot cancelled and replaced, a polling
    station moved, an election withdrawn; each told once, though postcodes, the ballots feed and
    the elections list all show the cancellation."""
    server = SimServer()
    service = DcServer(DcWorld(elections=30), {DC_KEY}, firewall_limit=10_000)
    base = await server.serve(service.app())
    raw = {
        "daemon": {"state_dir": str(tmp_path / "state"), "metrics": "off"},
        "sources": [dc_source(base, ["desk"], elections={"current": True})],
        "sinks": [chat_sink(channel, "text", events="election")],
    }
    try:
        async with opened(parse_config(raw)) as daemon:
            await daemon.run_once()
            for _ in range(STEPS):
                service.world.advance()
                await daemon.run_once()
    finally:
        await server.close()
    lines = channel.lines("text")
    assert [line for line in lines if "candidate added" in line] == [
        "Sandbox local election ward Harbour: candidate added: Dora Maar (Conservative and Unionist Party)"
    ]
    assert [line for line in lines if "ballot cancelled" in line and "Hill" in line] == [
        "Sandbox local election ward Hill: ballot cancelled (CANDIDATE_DEATH); "
        "replaced by local.sandbox.hill.2026-05-21"
    ]
    assert any(
        "Polling station for 2026-05-07 (postcode-AA12AA) is now Harbour Sports Centre" in x for x in lines
    )
    assert len([line for line in lines if "election withdrawn" in line]) == 1
    assert not [line for line in lines if "withdrawn: " in line]  # the deploy noise is no withdrawal


async def test_the_status_page_shows_the_latest_calls(
    channel: Channel, ap_night: tuple[ApServer, str], tmp_path: Path
) -> None:
    """/status lists the last 20 election events, newest first, the retraction marked."""
    replay, base = ap_night
    config = ap_config(tmp_path, base, chat_sink(channel, "text", events="election"))
    async with opened(config) as daemon:
        for _ in range(45):
            replay.election.advance(2)
            await daemon.run_once()
        status = await daemon.status()
    events = status["election_events"]
    assert 0 < len(events) <= 20
    committed = [e["committed_at"] for e in events]
    assert committed == sorted(committed, reverse=True)
    assert any(e["type"] == "call_retracted" and e["key"] == RETRACTED_RACE for e in events)
    page = render(status, None)
    assert "Latest calls and corrections" in page
    assert "AP retracted its call in U.S. Senate" in page


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"events": ["race_caled"]}, "sinks[0].events: unknown event type 'race_caled'"),
        ({"events": "election", "coalesce": True}, "coalesce and max_outbox_bytes drop older versions"),
        ({"templates": {"race_called": "{state} {"}}, "templates.race_called: a lone '{'"),
        ({"templates": {"race_caled": "x"}}, "templates: no event type 'race_caled'"),
        ({"format": "matrix"}, 'format = "matrix" posts to a room'),
        ({"kind": "webhook", "secret": "x", "events": "election"}, 'set body = "event"'),
    ],
)
def test_the_config_refuses_what_cannot_work(keys: dict[str, Any], message: str, tmp_path: Path) -> None:
    """A subscription or template that cannot work is refused at start, with its key path."""
    sink = {"name": "desk", "kind": "chat", "url": "https://hooks.example/x", **keys}
    raw = {
        "daemon": {"state_dir": str(tmp_path)},
        "sources": [{"name": "s", "kind": "http", "urls": ["https://example.org/a.json"], "sinks": ["desk"]}],
        "sinks": [sink],
    }
    with pytest.raises(ConfigError, match="sinks") as caught:
        parse_config(raw)
    assert message in str(caught.value)


def test_the_readme_examples_are_valid(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The README's election-event sinks load as written (docs cannot drift from the code)."""
    monkeypatch.setenv("WEBHOOK_SECRET", "s3cret")
    monkeypatch.setenv("SLACK_WEBHOOK_URL", "https://hooks.slack.example/services/T0/B0/x")
    for channel in ("CALLS", "NUMBERS", "CH"):
        monkeypatch.setenv(
            f"SLACK_{channel}_WEBHOOK_URL", f"https://hooks.slack.example/services/T0/{channel}/x"
        )
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = text.split("## Election events", 1)[1].split("\n## ", 1)[0]
    blocks = [block.split("```", 1)[0] for block in section.split("```toml\n")[1:]]
    assert len(blocks) == 3
    for block in blocks:
        sinks = tomllib.loads(block)["sinks"]
        source = {
            "name": "s",
            "kind": "http",
            "urls": ["https://example.org/a.json"],
            "sinks": [sinks[0]["name"]],
        }
        config = parse_config({"daemon": {"state_dir": str(tmp_path)}, "sources": [source], "sinks": sinks})
        assert config.sinks[0].events != ["versions"]


async def test_ops_alerts_reach_the_channel(channel: Channel, upstream: Upstream, tmp_path: Path) -> None:
    """With ops = true the channel hears of a source failing ops_after polls in a row (once, not at
    every poll), of its recovery, and of a delivery dead-lettered by another sink; without the
    key, a channel hears none of it."""
    url = upstream.file("/results.json", b'{"v": 1}')
    refusing = web.Application()
    refusing.router.add_post("/hook", _refused)
    server = SimServer()
    hook = await server.serve(refusing) + "/hook"
    raw = {
        "daemon": {"state_dir": str(tmp_path / "state"), "metrics": "off"},
        "sources": [
            {"name": "files", "kind": "http", "urls": [url], "backoff_base": "10ms", "sinks": ["cms", "desk"]}
        ],
        "sinks": [
            {"name": "cms", "kind": "webhook", "url": hook, "secret": "s3cret-for-the-test"},
            chat_sink(channel, "text", events="election", ops=True, ops_after=2),
            chat_sink(channel, "text", events="election") | {"name": "quiet", "url": f"{channel.base}/quiet"},
        ],
    }
    try:
        async with opened(parse_config(raw)) as daemon:
            await daemon.run_once()  # the first version: the webhook refuses it for good (404)
            upstream.host.inject("/results.json", Fault("status", count=-1, status=500))
            for _ in range(3):
                await asyncio.sleep(0.05)  # past the backoff
                await daemon.run_once()
            upstream.host.clear_faults()
            await asyncio.sleep(0.05)
            await daemon.run_once()
            await wait_for(lambda: len(channel.lines("text")) >= 3, timeout=20)
    finally:
        await server.close()
    lines = channel.lines("text")
    assert any(
        line.startswith("⚠ sink cms dead-lettered files/results.json #1: HTTP 404") for line in lines
    ), lines
    assert [line for line in lines if "failing" in line] == [
        "⚠ files failing: 2 polls in a row (1 resource(s))"
    ]
    assert [line for line in lines if "recovered" in line] == ["⚠ files recovered after 3 failed polls"]
    assert not [post for post in channel.posts if post.path == "/quiet"]


async def _refused(_request: web.Request) -> web.Response:
    """A hook that does not exist (dead-letters at once)."""
    return web.Response(status=404, text="no such hook")


async def test_a_sink_outage_is_one_alert_and_its_end_one_more(
    channel: Channel, upstream: Upstream, receiver: Receiver, tmp_path: Path
) -> None:
    """A webhook receiver answering 500 to eight versions in a row, then 200: the ops channel
    hears of the outage once (at the third failure in a row) and of its end once, with the count;
    not one line per failed version."""
    receiver.answers = [(500, {})] * 8
    url = upstream.file("/results.json", b'{"v": 0}')
    raw = {
        "daemon": {"state_dir": str(tmp_path / "state"), "metrics": "off"},
        "sources": [{"name": "files", "kind": "http", "urls": [url], "sinks": ["cms", "desk"]}],
        "sinks": [
            {"name": "cms", "kind": "webhook", "url": receiver.url, "secret": "s3cret-for-the-test"},
            chat_sink(channel, "text", events="election", ops=True),
        ],
    }
    async with opened(parse_config(raw)) as daemon:
        for version in range(1, 10):
            upstream.host.publish("/results.json", json.dumps({"v": version}).encode())
            await daemon.run_once()
        await wait_for(lambda: any("sink cms delivers again" in line for line in channel.lines("text")), 20)
    told = [line for line in channel.lines("text") if "sink cms" in line]
    assert len(told) == 2, told
    assert told[0].startswith("⚠ sink cms failing: 3 deliveries in a row (files/results.json #")
    assert "HTTP 500" in told[0]
    assert told[1].startswith("⚠ sink cms delivers again after") and ": 8 failed" in told[1]


async def test_a_call_retracted_and_made_again_with_results_unchanged_is_told_three_times(
    ap_night: tuple[ApServer, str], tmp_path: Path
) -> None:
    """On the simulator: AP calls a race, takes the call back and calls it again, no new votes in
    between (``lastUpdated`` unchanged throughout): three events, in order."""
    replay, base = ap_night
    key = "PA:1011:G"
    replay.election.advance(1)
    assert replay.election.races[key]["raceCallStatus"] != "Called"
    updated = replay.election.races[key]["reportingUnits"][0]["lastUpdated"]
    config = ap_config(tmp_path, base, {"name": "out", "kind": "stdout"})
    async with opened(config) as daemon:
        assert await daemon.run_once()
        for change in (replay.election.call, replay.election.retract, replay.election.call):
            change(key)
            assert await daemon.run_once()
        told = await daemon.store.latest_election_events(50, "ap")
    assert replay.election.races[key]["reportingUnits"][0]["lastUpdated"] == updated
    stories = [e["type"] for e in reversed(told) if e["key"] == key]
    assert stories == ["race_called", "call_retracted", "race_called"], stories
