"""Chat a desk can read: one digest per cycle grouped by section, within the platform's size limit
(split, never cut inside a line), paced at its published rate against a stand-in Slack that
refuses a second message within a second; digests in German and French as an editor reads
them."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from pollerd.config import parse_config
from pollerd.config.sinks import ChatSinkConfig
from pollerd.core.election import Fact
from pollerd.core.languages import LANGUAGES
from pollerd.core.model import Event, Validators
from pollerd.core.templates import render
from pollerd.election.ap_numbers import race_numbers
from pollerd.election.fso import fso_facts
from pollerd.sim.ap import ApServer
from pollerd.sim.ap_election import ApElection
from pollerd.sim.fso_vote import VOTE_FILE, VoteContent
from pollerd.sim.server import SimServer
from pollerd.sinks.base import DeliveryFailed
from pollerd.sinks.chat import ChatSink
from pollerd.sinks.chat_digest import Digest, DigestShape
from pollerd.sinks.chat_messages import MESSAGE_SIZE, Lines, measure
from pollerd.store.protocol import StateStore
from tests.conftest import AP_KEY, ap_source, one_source, opened
from tests.test_election_numbers import race

SLACK_INTERVAL = 1.0  # Slack: about one message a second per webhook


@dataclass
class StrictSlack:
    """A Slack incoming webhook on 127.0.0.1 that answers 429 (Retry-After: 1) to a message
    arriving within a second of the last one it took, and to the messages listed in ``refuse``."""

    refuse: set[int] = field(default_factory=set)  # by the number of the request, from 1
    taken: list[tuple[float, str]] = field(default_factory=list)
    refused: int = 0
    requests: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        """Take the message, or answer 429."""
        self.requests += 1
        now = time.monotonic()
        text = (await request.json())["text"]
        too_soon = bool(self.taken) and now - self.taken[-1][0] < SLACK_INTERVAL
        if too_soon or self.requests in self.refuse:
            self.refused += 1
            return web.Response(status=429, text="rate_limited", headers={"Retry-After": "1"})
        self.taken.append((now, text))
        return web.Response(text="ok")


@pytest.fixture
async def slack() -> AsyncIterator[tuple[StrictSlack, str]]:
    """The strict stand-in and its webhook URL."""
    server = SimServer()
    service = StrictSlack()
    app = web.Application()
    app.router.add_post("/services/T0/B0/x", service.handle)
    base = await server.serve(app)
    yield service, f"{base}/services/T0/B0/x"
    await server.close()


def chat_config(url: str, **keys: Any) -> ChatSinkConfig:
    """A chat sink's configuration, checked as the daemon checks it."""
    raw = {
        "daemon": {"state_dir": "/tmp/unused", "metrics": "off"},
        "sources": [{"name": "s", "kind": "http", "urls": ["http://127.0.0.1:1/x"], "sinks": ["desk"]}],
        "sinks": [{"name": "desk", "kind": "chat", "url": url, **keys}],
    }
    sink = parse_config(raw).sinks[0]
    assert isinstance(sink, ChatSinkConfig)
    return sink


def event(sequence: int, facts: list[Fact]) -> Event:
    """A version of one resource telling ``facts``."""
    return Event(
        Event.make_id("ap", "results", sequence, f"{sequence:064x}"),
        "ap",
        "results",
        "http://127.0.0.1/results",
        sequence,
        f"{sequence:064x}",
        None,
        1,
        "application/json",
        Validators(),
        datetime(2026, 11, 4, 3, 0, tzinfo=UTC),
        "json",
        election=tuple(facts),
    )


def called(n: int) -> Fact:
    """AP calls race ``n``."""
    fields = {
        "state_name": "Pennsylvania",
        "race": f"State House, District {n}",
        "candidate": f"Candidate {n}",
        "party": "Dem",
        "share": 51.5,
        "precincts_reporting_pct": 80.0,
    }
    return Fact("race_called", f"PA:{n}:G", f"call:PA:{n}:G", "X:1", None, fields, None, {"state": "PA"})


def batch(n: int, votes: int) -> Fact:
    """``votes`` more counted in race ``n``."""
    fields = {
        "state_name": "Ohio",
        "race": f"County Commission, District {n}",
        "votes_added": votes,
        "candidates_batch": [
            {"candidate": "A", "share_of_batch": 60.0},
            {"candidate": "B", "share_of_batch": 40.0},
        ],
        "leader": "A",
        "margin_votes": votes // 5,
        "margin_points": 2.0,
        "precincts_reporting_pct": 50.0,
    }
    return Fact(
        "votes_counted", f"OH:{n}:G", f"votes:OH:{n}:G", str(votes), None, fields, None, {"state": "OH"}
    )


async def test_200_events_reach_a_slack_that_takes_one_message_a_second(
    slack: tuple[StrictSlack, str],
) -> None:
    """120 calls and 80 batches in one cycle: digests of whole lines, none over Slack's 4,000
    characters, a second apart (the stand-in refuses nothing), every call told once, the 10
    biggest batches told and the other 70 summed up; a 429 in the middle costs a wait, and the
    retried digest tells only what had not been posted, with what came meanwhile."""
    service, url = slack
    service.refuse = {3}
    sink = ChatSink(chat_config(url), "pollerd-test")
    calls = [called(n) for n in range(120)]
    batches = [batch(n, 1000 + 37 * n) for n in range(80)]
    cycle = [event(n, [fact]) for n, fact in enumerate(calls + batches)]
    try:
        with pytest.raises(DeliveryFailed) as refused:
            await sink.deliver_group(cycle)
        assert refused.value.retry_after == 1.0
        await asyncio.sleep(refused.value.retry_after)
        later = [event(500, [called(500)])]
        await sink.deliver_group(cycle + later)  # the deliverer retries the group, with more
        posted = len(service.taken)
        await sink.deliver_group(later)  # a redelivery asked for later is posted again
        assert len(service.taken) == posted + 1
    finally:
        await sink.close()
    assert service.refused == 1  # the scripted one: never a message sent too soon
    times = [at for at, _ in service.taken]
    assert all(b - a >= SLACK_INTERVAL for a, b in itertools.pairwise(times))
    *texts, again = [text for _, text in service.taken]
    redelivered = "Pennsylvania: AP calls State House, District 500 for Candidate 500 (Dem): 51.5%, "
    assert again == redelivered + "80% of precincts reporting"
    assert all(len(text) <= MESSAGE_SIZE["slack"] for text in texts)
    lines = [line for text in texts for line in text.splitlines()]
    told_calls = [line for line in lines if line.startswith("Pennsylvania: AP calls")]
    assert len(told_calls) == len(set(told_calls)) == 121 and again in told_calls
    told_batches = [line for line in lines if line.startswith("Ohio:")]
    assert [int(line.split()[5].replace(",", "")) for line in told_batches] == [
        1000 + 37 * n for n in range(79, 69, -1)
    ]
    assert lines.count("and 70 more") == 1
    assert lines.count("*Called*") == len([t for t in texts if "Pennsylvania: AP calls" in t])
    assert all(text.split("\n", 1)[0].startswith("200 election events (") for text in texts[:2])


def test_a_digest_is_split_at_the_platform_s_limit_never_inside_a_line() -> None:
    """Teams (28 KB a message): 300 long lines in messages none over the limit, each line whole
    in exactly one; a line longer than any message is split between words."""
    lines = Lines({})
    limit = MESSAGE_SIZE["teams"]
    digest = Digest(lines.words, measure("teams"), DigestShape(limit, 1000, 10))
    long_calls = [
        called(n)
        if n
        else Fact("race_called", "PA:0:G", "call:PA:0:G", "X:1", None, {"race": "word " * 7000})
        for n in range(300)
    ]
    told = [item for n, fact in enumerate(long_calls) for item in lines.of(event(n, [fact]))]
    messages = digest.messages(told)
    sizes = [measure("teams")(message) for message in messages]
    assert len(messages) > 2 and max(sizes) <= limit
    real = [len(json.dumps(teams(message), ensure_ascii=False).encode()) for message in messages]
    assert real == sizes
    body = [line for message in messages for n, line in enumerate(message.lines) if n not in message.headings]
    assert sorted(line for line in body if "Candidate" in line) == sorted(t.text for t in told[1:])
    pieces = [line for line in body if line.startswith("word") or line.endswith("word")]
    assert len(pieces) >= 2 and all(set(piece.split(" ")) <= {"word", ""} for piece in pieces[1:-1])
    assert sum(piece.count("word") for piece in pieces) >= 7000


def teams(message: Any) -> dict[str, Any]:
    """The Teams body of a message."""
    from pollerd.sinks.chat_messages import teams_body

    return teams_body(message)


def _night_facts() -> list[Fact]:
    """A Pennsylvania batch that changes the lead, and a vote day: a canton's count growing, a
    majority tipping, the connected proposals decided together."""
    old = race({"a": 10_000, "b": 9_000}, eevp=40)
    new = race({"a": 11_000, "b": 12_304}, eevp=52)
    content = VoteContent()
    facts = race_numbers("PA:1009:G", old, new)
    facts += [
        f
        for f in fso_facts(VOTE_FILE, content.document(30), content.document(33))
        if f.type == "canton_progress"
    ][:1]
    facts += [
        f
        for f in fso_facts(VOTE_FILE, content.document(48), content.document(51))
        if f.type == "majority_changed"
    ]
    facts += [
        f
        for f in fso_facts(VOTE_FILE, content.document(75), content.document(78))
        if f.type == "proposal_decided"
    ]
    return facts


GERMAN = """\
9 Meldungen:
*Ausgerufen*
Stromgesetz: angenommen, 52.4 % Ja
Initiative für bezahlbare Mieten: angenommen, 57.87 % Ja
Gegenentwurf für bezahlbare Mieten: angenommen, 59.87 % Ja
Stichfrage: Initiative oder Gegenentwurf?: die Stichfrage bevorzugt Gegenentwurf für bezahlbare Mieten, \
41.87 % Ja; Gegenentwurf für bezahlbare Mieten tritt in Kraft
*Neue Führung*
Pennsylvania: U.S. Senate: C2 b (P2) führt jetzt, mit 1'304 Stimmen (5.6 Pkt.) vor C1 a
Stromgesetz: das Volk sagt jetzt Ja (50.09 % Ja)
*Auszählung*
Pennsylvania: U.S. Senate: 4'304 weitere Stimmen ausgezählt (C2 b 76.8 %, C1 a 23.2 %); C2 b führt mit \
1'304 (5.6 Pkt.), 40 % der Wahlbezirke
Thurgau: 2 von 3 Gemeinden ausgezählt (Stromgesetz): 49.72 % Ja
*Weiter*
Pennsylvania: U.S. Senate: 50 % der erwarteten Stimmen ausgezählt"""

FRENCH = """\
9 nouvelles:
*Annoncés*
Loi sur l'électricité : objet accepté, 52,4 % de oui
Initiative pour des loyers abordables : objet accepté, 57,87 % de oui
Contre-projet pour des loyers abordables : objet accepté, 59,87 % de oui
Question subsidiaire : initiative ou contre-projet ? : la question subsidiaire favorise Contre-projet \
pour des loyers abordables, 41,87 % de oui ; Contre-projet pour des loyers abordables entre en vigueur
*Changements en tête*
Pennsylvania : U.S. Senate : C2 b (P2) passe en tête, de 1\u202f304 voix (5,6 pts), devant C1 a
Loi sur l'électricité : le peuple dit désormais oui (50,09 % de oui)
*Dépouillement*
Pennsylvania : U.S. Senate : 4\u202f304 voix de plus (C2 b 76,8 %, C1 a 23,2 %) ; C2 b mène de 1\u202f304 \
(5,6 pts), 40 % des bureaux
Thurgovie : 2 communes sur 3 dépouillées (Loi sur l'électricité) : 49,72 % de oui
*Aussi*
Pennsylvania : U.S. Senate : 50 % des voix attendues dépouillées"""


@pytest.mark.parametrize(("language", "expected"), [("de", GERMAN), ("fr", FRENCH)])
def test_a_digest_reads_in_the_channel_s_language(language: str, expected: str) -> None:
    """Headings, lines, Swiss number formats (12'304; 12 304 with a narrow no-break space) and
    the canton's name in the channel's language."""
    config = chat_config("https://hooks.slack.com/services/T0/B0/x", language=language)
    lines = Lines(config.templates, config.language)
    digest = Digest(lines.words, measure("slack"), DigestShape(MESSAGE_SIZE["slack"], 30, 10))
    told = [item for n, fact in enumerate(_night_facts()) for item in lines.of(event(n, [fact]))]
    (message,) = digest.messages(told)
    from pollerd.sinks.chat_messages import slack_body

    assert slack_body(message)["text"] == expected


async def test_a_national_cycle_reaches_the_strict_slack_in_paced_digests(
    slack: tuple[StrictSlack, str], tmp_path: Path
) -> None:
    """Through the daemon: the AP simulator's national night, 70 steps in one cycle (over 200
    election events, numbers included) to a channel that refuses a second message within a
    second: nothing refused, every digest within Slack's limit, every story of the cycle told,
    the counts told or summed up in "and N more"."""
    service, url = slack
    server = SimServer()
    replay = ApServer(ApElection(national=True), {AP_KEY}, quota_per_minute=100_000)
    base = await server.serve(replay.app())
    sink = {"name": "desk", "kind": "chat", "url": url, "events": "election", "numbers": True}
    sink |= {"group_window": "50ms", "counts_shown": 5}
    source = ap_source(base, ["desk"], quota_per_minute=100_000, queries=[{"name": "national"}])
    try:
        async with opened(one_source(tmp_path, source, [sink])) as daemon:
            replay.election.advance(1)
            assert await daemon.run_once()
            before = len(service.taken)
            earlier = {e["event_id"] for e in await _all_events(daemon.store)}
            replay.election.advance(70)
            assert await daemon.run_once()
            cycle = [e for e in await _all_events(daemon.store) if e["event_id"] not in earlier]
    finally:
        await server.close()
    assert len(cycle) >= 200
    assert service.refused == 0
    texts = [text for _, text in service.taken[before:]]
    assert all(len(text) <= MESSAGE_SIZE["slack"] for text in texts) and len(texts) > 1
    times = [at for at, _ in service.taken[before:]]
    assert all(b - a >= SLACK_INTERVAL for a, b in itertools.pairwise(times))
    lines = [line for text in texts for line in text.splitlines()]
    stories = [e for e in cycle if e["type"] not in ("votes_counted", "canton_progress")]
    assert len([line for line in lines if not line.startswith("*") and "election events" not in line]) == (
        len(stories) + min(5, len(cycle) - len(stories)) + 1
    )
    more = next(line for line in lines if line.startswith("and "))
    assert int(more.split()[1]) == len(cycle) - len(stories) - 5


async def _all_events(store: StateStore) -> list[dict[str, Any]]:
    """Every election event the AP source committed, stories and numbers."""
    told = await store.latest_election_events(10_000, "ap")
    return told + await store.latest_election_events(10_000, "ap", numbers=True)


def test_numbers_are_written_for_the_language_and_plainly_in_keys() -> None:
    """A chat line writes 12,304 / 12'304 / 12 304; an object key's {sequence} stays 12304."""
    fields = {"sequence": 12304, "share": 52.4}
    assert render("{sequence} {share}", fields, LANGUAGES["en"]) == "12,304 52.4"
    assert render("{sequence} {share}", fields, LANGUAGES["de"]) == "12'304 52.4"
    assert render("{sequence} {share}", fields, LANGUAGES["fr"]) == "12\u202f304 52,4"
    assert render("{source}/{sequence}.json", {"source": "ap", "sequence": 12304}) == "ap/12304.json"
