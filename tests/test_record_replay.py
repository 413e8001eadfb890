"""Record a night, replay it, and run a second pollerd against the replay: the same versions in
the same order and the same election events, at the recorded pace and 20 times faster; a
recording cut by ``kill -9`` replays up to its last complete answer."""

from __future__ import annotations

import asyncio
import hashlib
import json
import signal
import sqlite3
import sys
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from pollerd.config import parse_config
from pollerd.daemon.app import Daemon
from pollerd.record.archive import INDEX, Answer, ArchiveWriter, SourceInfo, read_archive
from pollerd.replay.config_file import replay_sources, write_config
from pollerd.replay.server import Replay, ReplayOptions
from pollerd.sim.ap import ApElection, ApServer
from pollerd.sim.democracyclub import STEPS, DcServer, DcWorld
from pollerd.sim.fso_content import SMALL
from pollerd.sim.night import END, START, ElectionNight
from pollerd.sim.night_recording import BUILT_IN, HOSTS, RENDERERS, generate_random_night
from pollerd.sim.server import SimServer
from pollerd.versions.snapshot import Snapshot
from tests.conftest import AP_KEY, DC_KEY, ap_source, dc_source, fso_source, opened, wait_for

NIGHT_STEPS = 12
REPLAY_STEP = 0.5  # real seconds between two recorded moments, whatever the speed
Night = tuple[ElectionNight, ApServer, DcServer]


@pytest.fixture
async def upstreams() -> AsyncIterator[tuple[Night, dict[str, str]]]:
    """The three simulated upstreams (FSO, AP, Democracy Club), not moving by themselves."""
    server = SimServer()
    fso = ElectionNight(SMALL)
    api = await fso.open(server)
    ap = ApServer(ApElection(steps=4 * NIGHT_STEPS), {AP_KEY}, quota_per_minute=100_000, page_size=3)
    dc = DcServer(DcWorld(), {DC_KEY}, firewall_limit=100_000)
    bases = {"fso": api, "ap": await server.serve(ap.app()), "dc": await server.serve(dc.app())}
    yield (fso, ap, dc), bases
    await server.close()


def sources(bases: dict[str, str], pace: float) -> list[dict[str, Any]]:
    """The three sources, polling every ``pace`` seconds (the replay divides it by its speed)."""
    every = {"interval": f"{pace:g}s", "backoff_base": "20ms", "backoff_max": "100ms"}
    return [
        fso_source(bases["fso"], ["out"], discovery_interval=f"{pace:g}s", **every),
        ap_source(bases["ap"], ["out"], quota_per_minute=100_000, **every)
        | {
            "queries": [
                {"name": "senate", "officeID": "S", "level": "ru"},
                {"name": "pa", "statePostal": "PA"},
            ]
        },
        dc_source(bases["dc"], ["out"], request_budget="100000 per 5m", **every),
    ]


async def record_night(tmp_path: Path, night: Night, bases: dict[str, str], gap: float) -> Path:
    """Play the night in NIGHT_STEPS moments ``gap`` recorded seconds apart, one poll cycle each."""
    fso, ap, dc = night
    recording = tmp_path / "recording"
    raw = {
        "daemon": {"state_dir": str(tmp_path / "first"), "metrics": "off", "record": str(recording)},
        "sources": sources(bases, gap / 5),
        "sinks": [{"name": "out", "kind": "filesystem", "root": str(tmp_path / "out")}],
    }
    moment = [START.timestamp()]
    daemon = Daemon(parse_config(raw))
    daemon.recordings.clock = lambda: moment[0]
    try:
        await daemon.open()
        for step in range(NIGHT_STEPS + 1):
            fso.advance_to(START + (END - START) * step / NIGHT_STEPS)
            if step:
                ap.election.advance(4)
            if step and dc.world.step < STEPS:
                dc.world.advance()
            await daemon.run_once()
            moment[0] += gap
    finally:
        await daemon.close()
    return recording


def events(state: Path) -> dict[tuple[str, str], list[Any]]:
    """Per resource, its versions' SHA-256 in order; per subject (a race, a canton, a ballot),
    its election events in order. (Which file of a ballot tells a canton's story first depends
    on the order a cycle polls them in, so election events are compared by what they are about.)"""
    with sqlite3.connect(state / "pollerd.sqlite3") as db:
        found: dict[tuple[str, str], list[Any]] = {}
        for source, resource, sha in db.execute("SELECT source, resource, sha256 FROM events ORDER BY id"):
            found.setdefault((source, resource), []).append(sha)
        for source, kind, subject, facts in db.execute(
            "SELECT source, type, subject, state FROM election_events ORDER BY id"
        ):
            found.setdefault((source, subject), []).append((kind, facts))
    return found


async def replay_night(recording: Path, tmp_path: Path, speed: float) -> Path:
    """Serve the recording at ``speed`` and run a second pollerd with the configuration the
    replay writes until the night is over."""
    replay = Replay(read_archive(recording), ReplayOptions(speed=speed))
    await replay.open()
    try:
        written = tmp_path / "replay.toml"
        write_config(
            written, replay_sources(replay.recordings, replay.local_url, speed), str(tmp_path / "second")
        )
        config = parse_config(_loaded(written))
        assert {s.name: s.interval for s in config.sources} == pytest.approx(
            {"wahlen": REPLAY_STEP / 5, "ap": REPLAY_STEP / 5, "uk": REPLAY_STEP / 5}
        )
        replay.clock.jump(replay.clock.start)
        async with opened(config) as daemon:
            stop = asyncio.Event()
            running = asyncio.create_task(daemon.run(stop))
            await wait_for(lambda: replay.clock.ended, timeout=60)
            await asyncio.sleep(1.0)  # the last moment's versions reach the second daemon
            stop.set()
            await running
    finally:
        await replay.close()
    return tmp_path / "second"


def _loaded(path: Path) -> dict[str, Any]:
    return tomllib.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("speed", [1.0, 20.0])
async def test_a_replayed_night_gives_a_second_pollerd_the_same_events(
    upstreams: tuple[Night, dict[str, str]], tmp_path: Path, speed: float
) -> None:
    """Every version of every resource, in order, and every election event, as the first
    pollerd had them; the archive holds no key."""
    night, bases = upstreams
    recording = await record_night(tmp_path, night, bases, gap=REPLAY_STEP * speed)
    first = events(tmp_path / "first")
    second = events(await replay_night(recording, tmp_path, speed))
    assert sorted(first) == sorted(second)
    for resource, seen in first.items():
        assert second[resource] == seen, resource
    assert sum(len(v) for v in first.values()) > 40
    kinds = {event[0] for seen in first.values() for event in seen if isinstance(event, tuple)}
    assert {"race_called", "canton_complete", "ballot_cancelled"} <= kinds
    archive = b"".join(p.read_bytes() for p in recording.rglob("*") if p.is_file() and p.suffix != ".gz")
    assert AP_KEY.encode() not in archive and DC_KEY.encode() not in archive


async def test_a_recording_cut_by_kill_9_replays_up_to_its_last_complete_answer(tmp_path: Path) -> None:
    """``pollerd run`` recording an AP night is killed; a torn line at the end (what a kill
    mid-write leaves) is skipped; ``pollerd replay --config`` serves the rest, and a pollerd
    run on that config ends with the snapshot of every complete answer; a recorder that starts
    again cuts the torn line before it appends."""
    server = SimServer()
    ap = ApServer(ApElection(steps=40), {AP_KEY}, quota_per_minute=100_000, page_size=3)
    base = await server.serve(ap.app())
    recording = tmp_path / "recording"
    config = tmp_path / "run.toml"
    config.write_text(
        f'[daemon]\nstate_dir = "{tmp_path}/first"\nmetrics = "off"\nrecord = "{recording}"\n\n'
        f'[[sources]]\nname = "ap"\nkind = "ap"\napi = "{base}"\nelection_date = "2026-11-03"\n'
        f'api_key = "{AP_KEY}"\ninterval = "50ms"\nquota_per_minute = 100000\nsinks = ["out"]\n'
        '[[sources.queries]]\nname = "senate"\nofficeID = "S"\nlevel = "ru"\n\n'
        f'[[sinks]]\nname = "out"\nkind = "filesystem"\nroot = "{tmp_path}/out"\n'
    )
    index = recording / "ap" / INDEX
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pollerd", "run", "-c", str(config), stderr=asyncio.subprocess.DEVNULL
    )
    try:

        def lines() -> int:
            return index.read_bytes().count(b"\n") if index.exists() else 0

        await wait_for(lambda: lines() >= 3)
        for _ in range(8):
            ap.election.advance(2)
            before = lines()
            await wait_for(lambda: lines() > before)  # noqa: B023  # awaited within the iteration
    finally:
        process.send_signal(signal.SIGKILL)
        await process.wait()
        await server.close()
    with index.open("ab") as file:
        file.write(b'{"at":1.0,"method":"GET","url":"http://127.0.0.1/torn","sta')
    (kept,) = read_archive(recording)
    assert kept.answers and all(a.url != "http://127.0.0.1/torn" for a in kept.answers)
    expected = Snapshot()
    for answer in kept.answers:
        if answer.body is not None and answer.status == 200:
            expected.merge(json.loads(kept.body(answer.body)))

    written = tmp_path / "replay.toml"
    replay = await asyncio.create_subprocess_exec(
        *(
            sys.executable,
            "-m",
            "pollerd",
            "replay",
            str(recording),
            "--speed",
            "1000",
            "--config",
            str(written),
        ),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert replay.stdout is not None
        said = [(await replay.stdout.readline()).decode() for _ in range(2)]
        control = said[1].split()[2].removesuffix("/status,")
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{control}/status") as reply:
                assert (await reply.json())["sources"] == [
                    {"name": "ap", "kind": "ap", "answers": len(kept.answers)}
                ]
            async with session.post(f"{control}/control", json={"jump": "1h"}) as reply:
                assert (await reply.json())["ended"] is True
        raw = _loaded(written) | {"daemon": {"state_dir": str(tmp_path / "second"), "metrics": "off"}}
        async with opened(parse_config(raw)) as daemon:
            assert await daemon.run_once()
            assert await daemon.run_once()  # the link's answer: nothing new
    finally:
        replay.send_signal(signal.SIGTERM)
        await replay.wait()
    assert (tmp_path / "second").exists()
    second = events(tmp_path / "second")[("ap", "senate")]
    with sqlite3.connect(tmp_path / "second" / "pollerd.sqlite3") as db:
        (body,) = db.execute(
            "SELECT body FROM events WHERE resource = 'senate' ORDER BY id DESC LIMIT 1"
        ).fetchone()
    assert len(second) == 1 and json.loads(body)["sha256"] == expected.digest()[0]

    writer = ArchiveWriter(recording / "ap", kept.info)
    writer.append(Answer(2.0, "GET", "http://127.0.0.1/after", 404))
    writer.close()
    (again,) = read_archive(recording)
    assert [a.url for a in again.answers] == [*(a.url for a in kept.answers), "http://127.0.0.1/after"]
    assert again.skipped == 0


async def test_the_replay_is_told_where_to_be_and_can_zero_the_counts(tmp_path: Path) -> None:
    """/status says where the night is; POST /control pauses, jumps and changes speed (a bad
    order is refused with the reason); AP answers come with zero counts and no winner on
    ``setZeroCounts=true``, as recorded otherwise."""
    election = ApElection(steps=60)
    query = "/v2/elections/2026-11-03?officeID=S"
    recording = tmp_path / "recording"
    writer = ArchiveWriter(recording / "ap", SourceInfo("ap", "ap", {"api": "https://api.ap.example"}))
    for at in (1000.0, 2000.0):
        election.advance(30)
        link = f"https://api.ap.example{query}&minDateTime={election.timestamp()}"
        races = election.select({"officeID": "S"}, None, election.step)
        body = json.dumps({"electionDate": "2026-11-03", "races": races, "nextrequest": link}).encode()
        sha = writer.keep_bytes(body)
        writer.append(Answer(at, "GET", f"https://api.ap.example{query}", 200, {}, sha, len(body)))
    writer.close()
    replay = Replay(read_archive(recording), ReplayOptions(speed=1.0))
    await replay.open()
    try:
        origin = replay.local["https://api.ap.example"]
        async with aiohttp.ClientSession() as session:

            async def control(order: dict[str, Any]) -> tuple[int, dict[str, Any]]:
                async with session.post(f"{replay.control_url}/control", json=order) as answer:
                    return answer.status, await answer.json()

            async def races_now(zero: bool) -> list[dict[str, Any]]:
                url = origin + query + ("&setZeroCounts=true" if zero else "")
                async with session.get(url) as answer:
                    return list((await answer.json())["races"])

            status, paused = await control({"pause": True, "jump": "500s"})
            assert status == 200 and paused["paused"] and paused["progress"] == 0.5
            assert paused["now"] == "1970-01-01T00:25:00.000Z"
            assert (await races_now(False)) == replay.chains[next(iter(replay.chains))].races(0)
            status, moved = await control({"jump": "1970-01-01T00:40:00Z", "speed": 5})
            assert moved["ended"] and moved["speed"] == 5 and moved["paused"]
            recorded, zeroed = await races_now(False), await races_now(True)
            assert any(
                c.get("winner") for r in recorded for u in r["reportingUnits"] for c in u["candidates"]
            )
            assert any(c["voteCount"] for r in recorded for u in r["reportingUnits"] for c in u["candidates"])
            for race in zeroed:
                for unit in race["reportingUnits"]:
                    assert unit["precinctsReporting"] == 0
                    assert all(c["voteCount"] == 0 and "winner" not in c for c in unit["candidates"])
            assert [r["raceID"] for r in zeroed] == [r["raceID"] for r in recorded]
            status, refused = await control({"rewind": True})
            assert status == 400 and "unknown order 'rewind'" in refused["error"]
            status, refused = await control({"jump": "teatime"})
            assert status == 400 and "neither a time" in refused["error"]
    finally:
        await replay.close()


def test_the_shipped_night_renders_what_it_recorded() -> None:
    """The built-in 2023 night is a recording: its index, and recipes that render each body
    again byte for byte (three of them here; every one when the demo serves it)."""
    (night,) = read_archive(BUILT_IN)
    assert night.info.kind == "fso" and len(night.answers) == 701 and night.skipped == 0
    replay = Replay([night], renderers=RENDERERS)
    files = [a for a in night.answers if a.body and not night.has_body(a.body)]
    assert len({a.body for a in files}) == 687  # every distinct file body of the night
    for answer in (files[0], files[len(files) // 2], files[-1]):
        assert answer.body is not None
        assert hashlib.sha256(replay.bodies.raw(answer.body)).hexdigest() == answer.body
    assert [a.status for a in night.answers if "ogd-static" in a.url].count(503) == 4


async def test_a_random_night_is_a_recording_to_rehearse_on(tmp_path: Path) -> None:
    """``pollerd generate-night`` writes a night that never happened: every file published
    again and again as the count progresses, replayable like any recording."""
    folder = tmp_path / "night"
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "pollerd", "generate-night", str(folder), "--seed", "3", "--small"),
        stdout=asyncio.subprocess.PIPE,
    )
    said, _ = await process.communicate()
    assert process.returncode == 0 and b"replay it with: pollerd replay" in said
    (night,) = read_archive(folder)
    published = [a for a in night.answers if a.status == 200 and "package_show" not in a.url]
    assert len({a.body for a in published}) > 100
    first = min(a.at for a in published if a.size > 0 and "parteien" in a.url)
    assert first >= START.timestamp() + 3600  # nothing to count before the polls close
    replay = Replay([night], ReplayOptions(begin="13h"))
    await replay.open()
    try:
        async with aiohttp.ClientSession() as session:
            package = (
                replay.local["https://ckan.opendata.swiss"] + "/api/3/action/package_show?id=eidg-wahlen-2023"
            )
            async with session.get(package) as answer:
                urls = [r["url"].strip() for r in (await answer.json())["result"]["resources"]]
            for url in urls:
                async with session.get(url) as answer:
                    assert answer.status == 200 and urls[0].startswith(replay.local[HOSTS["dam"]])
    finally:
        await replay.close()
    generated = generate_random_night(tmp_path / "again", 3, SMALL)
    assert generated.answers == len(night.answers)


@pytest.mark.parametrize("held", ["start_on_request", "paused"])
async def test_a_client_that_starts_late_gets_the_night_from_its_start(
    upstreams: tuple[Night, dict[str, str]], tmp_path: Path, held: str
) -> None:
    """The replay is held (until its first request, or until told to resume) while the second
    pollerd takes 3 s to start: every resource's versions, in order, and every election event,
    as the first pollerd had them."""
    night, bases = upstreams
    speed = 2.0
    recording = await record_night(tmp_path, night, bases, gap=REPLAY_STEP * speed)
    first = events(tmp_path / "first")
    options = ReplayOptions(speed=speed, paused=held == "paused", start_on_request=held == "start_on_request")
    replay = Replay(read_archive(recording), options)
    await replay.open()
    try:
        written = tmp_path / "replay.toml"
        sources = replay_sources(replay.recordings, replay.local_url, speed)
        write_config(written, sources, str(tmp_path / "second"))
        await asyncio.sleep(3.0)  # the client is slow to start: the night must not have moved
        assert replay.clock.now() == replay.clock.start
        async with opened(parse_config(_loaded(written))) as daemon:
            if held == "paused":
                async with (
                    aiohttp.ClientSession() as session,
                    session.post(f"{replay.control_url}/control", json={"resume": True}) as reply,
                ):
                    assert (await reply.json())["paused"] is False
            stop = asyncio.Event()
            running = asyncio.create_task(daemon.run(stop))
            await wait_for(lambda: replay.clock.ended, timeout=60)
            await asyncio.sleep(1.0)
            stop.set()
            await running
    finally:
        await replay.close()
    second = events(tmp_path / "second")
    assert sorted(first) == sorted(second)
    for resource, seen in first.items():
        assert second[resource] == seen, resource


async def test_a_url_asked_before_its_first_answer_gets_that_answer_and_the_feed_follows_any_cursor(
    upstreams: tuple[Night, dict[str, str]], tmp_path: Path
) -> None:
    """Before a URL's first recorded answer the replay serves that answer, not a 404; Democracy
    Club's ballots feed answers any cursor (the ballots updated after it, as they read then): a
    client ahead of the recording gets nothing new, not a 404."""
    night, bases = upstreams
    recording = await record_night(tmp_path, night, bases, gap=1.0)
    replay = Replay(read_archive(recording), ReplayOptions(speed=1.0, paused=True))
    await replay.open()
    try:
        dc = next(r for r in replay.recordings if r.info.kind == "democracyclub")
        first_asked: dict[str, Answer] = {}
        for recorded in replay.recordings:
            if recorded.info.kind != "ap":
                for answer in sorted(recorded.answers, key=lambda a: a.at):
                    if "/ballots/" not in answer.url:
                        first_asked.setdefault(answer.url, answer)
        later = max(first_asked.values(), key=lambda a: a.at)  # first asked late in the night
        assert later.at > replay.clock.start
        feed = next(a for a in dc.answers if "/ballots/" in a.url and a.status == 200)
        base = replay.local_url(feed.url).split("?")[0]
        replay.clock.jump(replay.clock.start - 1)
        async with aiohttp.ClientSession() as session:
            async with session.get(replay.local_url(later.url)) as reply:
                assert reply.status == (later.status or 200) != 404
            before = {"page_size": "100", "last_updated": "2000-01-01T00:00:00+00:00"}
            async with session.get(base, params=before) as reply:
                early = await reply.json()
            replay.clock.jump(replay.clock.until)
            async with session.get(base, params=before) as reply:
                everything = await reply.json()
            newest = max(row["last_updated"] for row in everything["results"])
            async with session.get(base, params={"page_size": "100", "last_updated": newest}) as reply:
                assert reply.status == 200 and (await reply.json())["results"] == []
    finally:
        await replay.close()
    assert everything["count"] >= early["count"] > 0
    stamps = [row["last_updated"] for row in everything["results"]]
    assert stamps == sorted(stamps)
