"""What moved, end to end, through restarts: the AP simulator's night (a lead that changes hands,
a count corrected downward, "Too Close to Call") and the FSO's vote day (a majority that tips,
cantons counting on, connected proposals decided together), each story told once to a chat
channel although the daemon is stopped and started twice."""

from __future__ import annotations

from pathlib import Path

from pollerd.config import parse_config
from pollerd.daemon.status_html import render
from pollerd.sim.ap import ApServer
from pollerd.sim.ap_election import CORRECTED_RACE, LEAD_RACE
from pollerd.sim.fso_vote import VoteDay
from pollerd.sim.server import SimServer
from tests.conftest import ap_source, opened, vote_source
from tests.test_election_events import Channel, channel, chat_sink

__all__ = ["channel"]  # the fixture, used by name

RUNS = 3  # the daemon is started this many times over the night


async def test_the_ap_night_tells_what_moved_once_through_restarts(
    channel: Channel, ap_uncalled: tuple[ApServer, str], tmp_path: Path
) -> None:
    """Colorado's governor changes leader once and is "Too Close to Call" once; West Virginia's
    Senate count is corrected downward once; no line is told twice."""
    replay, base = ap_uncalled
    sink = chat_sink(
        channel,
        "text",
        events="election",
        numbers=True,
        min_interval="0s",
        states=["CO", "WV"],
        counts_shown=100,
    )
    raw = {
        "daemon": {"state_dir": str(tmp_path / "state"), "metrics": "off"},
        "sources": [ap_source(base, ["desk"], quota_per_minute=100_000, queries=[{"name": "night"}])],
        "sinks": [sink],
    }
    steps = replay.election.steps
    for run in range(RUNS):
        async with opened(parse_config(raw)) as daemon:
            for _ in range(steps * run // RUNS, steps * (run + 1) // RUNS):
                replay.election.advance(1)
                assert await daemon.run_once()
            status = await daemon.status()
    lines = channel.lines("text")
    assert len(lines) == len(set(lines)), [line for line in lines if lines.count(line) > 1]
    governor = [line for line in lines if line.startswith("Colorado: Governor:")]
    assert [line for line in governor if "now leads" in line] == [
        next(line for line in governor if "Rivera (Dem) now leads" in line)
    ]
    assert [line.split("AP now says ")[1] for line in governor if "AP now says" in line] == [
        "Too Close to Call (was Too Early to Call)",
        "Called (was Too Close to Call)",
    ]
    senate = [line for line in lines if line.startswith("West Virginia: U.S. Senate:")]
    corrected = [line for line in senate if "corrected the count by -" in line]
    assert len(corrected) == 1, senate
    assert replay.election.corrected == {CORRECTED_RACE} and LEAD_RACE in replay.election.races
    (source,) = status["sources"]
    rows = {row["what"]: row for row in source["moved"]}
    governor = rows["Colorado: Governor"]
    assert governor["lead"].startswith("Alex1 Rivera by ") and "% of precincts" in governor["batch"]
    page = render(status, None)
    assert 'class="moved"' in page and "Colorado: Governor" in page


async def test_the_vote_day_tells_each_story_once_through_restarts(channel: Channel, tmp_path: Path) -> None:
    """The referendum's people's majority tips once; every canton finishes once per proposal and
    its progress is told once per step; the initiative, its counter-proposal and the deciding
    question are told together, in one message, the question naming what it favours."""
    server = SimServer()
    day = VoteDay()
    await day.open(server)
    source = vote_source(day.api_url, ["desk"])
    sink = chat_sink(channel, "text", events="election", numbers=True, min_interval="0s", counts_shown=100)
    raw = {
        "daemon": {"state_dir": str(tmp_path / "state"), "metrics": "off"},
        "sources": [source],
        "sinks": [sink],
    }
    steps = -(-day.content.steps // 3)
    try:
        for run in range(RUNS):
            async with opened(parse_config(raw)) as daemon:
                for _ in range(steps * run // RUNS, steps * (run + 1) // RUNS):
                    day.report(3)
                    assert await daemon.run_once()
                status = await daemon.status()
    finally:
        await server.close()
    assert day.finished
    lines = channel.lines("text")
    assert len(lines) == len(set(lines)), [line for line in lines if lines.count(line) > 1]
    assert [line for line in lines if "now say" in line] == [
        "Stromgesetz: the people now say yes (50.09% yes)"
    ]
    assert len([line for line in lines if "finished counting" in line]) == 26 * 4
    assert len([line for line in lines if " communes counted " in line]) > 26
    decided = [post.body.decode() for post in channel.posts if b"deciding question" in post.body]
    assert len(decided) == 1
    assert all(
        title in decided[0]
        for title in (
            "Initiative für bezahlbare Mieten: accepted",
            "Gegenentwurf für bezahlbare Mieten: accepted",
            "Stichfrage: Initiative oder Gegenentwurf?: the deciding question favours Gegenentwurf für "
            "bezahlbare Mieten, 41.87% yes; Gegenentwurf für bezahlbare Mieten comes into force",
        )
    ), decided[0]
    (source,) = status["sources"]
    rows = {row["what"]: row for row in source["moved"]}
    assert (
        rows["Stromgesetz"]["lead"].startswith("yes, ") and " of 3 communes" in rows["Stromgesetz"]["batch"]
    )
