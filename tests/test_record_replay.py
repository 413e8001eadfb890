"""Record a night, replay it, and run a second pollerd against the replay: the same versions in
the same order and the same election events, at the recorded pace and 20 times faster; a
recording cut by ``kill -9`` replays up to its last complete answer."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
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
from pollerd.sim.night_recording import BUILT_IN, RENDERERS, generate_random_night
from pollerd.sim.server import SimServer
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
        | {"queries": [{"name": "senate", "officeID": "S", "level": "ru"}, {"name": "pa", "statePostal": "PA"}]},
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
        write_config(written, replay_sources(replay.recordings, replay.local_url, speed), str(tmp_path / "second"))
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
    import tomllib

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
