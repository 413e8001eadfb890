"""What moved between two AP versions (``election.ap_numbers``), as tables: batches of votes,
corrections downward, leads, expected vote, v3's call status, fields AP stops sending; AP's
``winner: "N"``; who receives these numbers; and the simulator's night told once through a
restart."""

from __future__ import annotations

import copy
import sqlite3
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pollerd.config import parse_config
from pollerd.core.election import NUMBER_TYPES, STORY_TYPES, Fact
from pollerd.core.model import Event, Validators
from pollerd.delivery.fold import NumbersFold
from pollerd.delivery.subscription import Subscription
from pollerd.election.ap import ap_facts
from pollerd.election.ap_numbers import number_facts, race_numbers
from pollerd.election.fso import fso_facts
from pollerd.sim.ap import ApServer
from tests.conftest import ap_source, one_source, opened

KEY = "PA:1009:G"


def race(votes: Mapping[str, int | None], **keys: Any) -> dict[str, Any]:
    """Pennsylvania's Senate race with these candidates' votes at its state unit (None: AP left
    the field out); ``keys`` set race fields (``eevp``, ``raceCallStatus``)."""
    candidates = []
    for n, (cid, count) in enumerate(votes.items(), start=1):
        candidate: dict[str, Any] = {"candidateID": cid, "first": f"C{n}", "last": cid, "party": f"P{n}"}
        if count is not None:
            candidate["voteCount"] = count
        candidates.append(candidate)
    unit = {
        "level": "state",
        "statePostal": "PA",
        "stateName": "Pennsylvania",
        "precinctsReportingPct": 40.0,
        "lastUpdated": "2026-11-04T02:00:00Z",
        "candidates": candidates,
    }
    return {
        "statePostal": "PA",
        "raceID": "1009",
        "raceTypeID": "G",
        "officeID": "S",
        "officeName": "U.S. Senate",
        "reportingUnits": [unit],
        **keys,
    }


def told(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Fact]:
    """The facts between two versions of the race, by type."""
    facts = race_numbers(KEY, old, new)
    assert len({f.type for f in facts}) == len(facts)
    return {fact.type: fact for fact in facts}


def test_a_batch_says_who_got_it_and_what_it_did_to_the_margin() -> None:
    facts = told(race({"a": 1000, "b": 800}), race({"a": 1300, "b": 1500}))
    batch = facts["votes_counted"].new or {}
    assert batch["votes_added"] == 1000 and batch["correction"] is False
    assert [
        (c["candidate_id"], c["votes_added"], c["share_of_batch"]) for c in batch["candidates_batch"]
    ] == [
        ("b", 700, 70.0),
        ("a", 300, 30.0),
    ]
    assert batch["margin_before"]["candidate_id"] == "a" and batch["margin_before"]["margin_votes"] == 200
    assert batch["margin_after"] == {
        "candidate": "C2 b",
        "candidate_id": "b",
        "party": "P2",
        "margin_votes": 200,
        "margin_points": 7.1,
    }
    lead = facts["lead_changed"]
    assert (
        lead.state == "b"
        and (lead.old or {})["candidate_id"] == "a"
        and (lead.new or {})["margin_votes"] == 200
    )
    assert (
        facts["votes_counted"].subject == f"votes:{KEY}" and facts["votes_counted"].state == "a=1300,b=1500"
    )


def test_counts_that_go_down_are_a_correction_not_an_error() -> None:
    facts = told(race({"a": 1000, "b": 800}), race({"a": 950, "b": 800}))
    batch = facts["votes_counted"].new or {}
    assert batch["correction"] is True and batch["votes_added"] == -50
    assert "lead_changed" not in facts


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ({}, {"eevp": 30}, "25"),  # AP starts sending eevp: a first mark crossed
        ({"eevp": 30}, {"eevp": 55}, "50"),
        ({"eevp": 55}, {"eevp": 74}, None),  # no new mark
        ({"eevp": 95}, {"eevp": 99.2}, "99"),
        ({"eevp": 40}, {}, None),  # AP stops sending it: not a change
    ],
)
def test_expected_vote_crossing_its_marks(
    old: dict[str, Any], new: dict[str, Any], expected: str | None
) -> None:
    facts = told(race({"a": 1}, **old), race({"a": 1}, **new))
    assert (facts["expected_vote"].state if "expected_vote" in facts else None) == expected


def test_the_call_status_is_told_only_where_ap_sends_it() -> None:
    v2 = race({"a": 1})  # v2 sends no raceCallStatus
    v3 = race({"a": 1}, raceCallStatus="Too Early to Call")
    assert "race_status_changed" not in told(v2, v3)
    closer = told(v3, race({"a": 1}, raceCallStatus="Too Close to Call"))["race_status_changed"]
    assert (
        closer.state == "Too Close to Call" and (closer.old or {})["race_call_status"] == "Too Early to Call"
    )


def test_a_version_that_only_drops_zeros_says_nothing() -> None:
    assert race_numbers(KEY, race({"a": 0, "b": 500}), race({"a": None, "b": 500})) == []
    assert number_facts(None, {KEY: race({"a": 1})}) == []  # a first version: no batch before it


def test_a_winner_overturned_is_a_retraction_with_its_reason() -> None:
    called = race({"a": 10, "b": 5})
    called["reportingUnits"][0]["candidates"][0]["winner"] = "X"
    overturned = copy.deepcopy(called)
    overturned["reportingUnits"][0]["candidates"][0]["winner"] = "N"
    [fact] = ap_facts({"races": [called]}, {"races": [overturned]})
    assert fact.type == "call_retracted" and (fact.new or {})["reason"] == "overturned"


@pytest.mark.parametrize(
    ("table", "numbers"),
    [
        ({"events": ["election"]}, False),
        ({"events": ["election"], "numbers": True}, True),
        ({"events": ["race_called", "votes_counted"]}, False),
    ],
)
def test_numbers_reach_only_the_sinks_that_ask(table: dict[str, Any], numbers: bool, tmp_path: Path) -> None:
    sink = {"name": "desk", "kind": "stdout", **table}
    source = {"name": "s", "kind": "http", "urls": ["https://example.org/a.json"], "sinks": ["desk"]}
    config = parse_config({"daemon": {"state_dir": str(tmp_path)}, "sources": [source], "sinks": [sink]})
    subscription = Subscription.of(config.sinks[0])
    assert (set(NUMBER_TYPES) <= subscription.types) == numbers
    if table["events"] == ["election"]:
        assert set(STORY_TYPES) <= subscription.types
    else:
        assert subscription.types == {"race_called", "votes_counted"}


async def test_the_night_tells_each_batch_once_through_a_restart(
    ap_uncalled: tuple[ApServer, str], tmp_path: Path
) -> None:
    """Two queries carry Pennsylvania's Senate race; the night is polled in three runs of the
    daemon: each batch of that race is told once, in order, every total only growing."""
    replay, base = ap_uncalled
    queries = [{"name": "pennsylvania", "statePostal": "PA"}, {"name": "senate", "officeID": "S"}]
    source = ap_source(base, ["out"], quota_per_minute=100_000, queries=queries)
    config = one_source(tmp_path, source, [{"name": "out", "kind": "stdout", "numbers": True}])
    for steps in (range(10), range(10, 20), range(20, 40)):
        async with opened(config) as daemon:
            for _ in steps:
                replay.election.advance(2)
                assert await daemon.run_once()
    with sqlite3.connect(tmp_path / "state" / "pollerd.sqlite3") as db:
        rows = db.execute(
            "SELECT state FROM election_events WHERE type = 'votes_counted'"
            " AND json_extract(body, '$.key') = ? ORDER BY id",
            (KEY,),
        ).fetchall()
    totals = [sum(int(part.split("=")[1]) for part in state.split(",")) for (state,) in rows]
    assert len(totals) >= 5 and totals == sorted(set(totals)), totals


def batch_event(n: int, old: dict[str, Any], new: dict[str, Any]) -> Event:
    """A version event of the race carrying the facts between two of its versions."""
    facts = tuple(race_numbers(KEY, old, new))
    return Event(
        event_id=f"e{n}",
        source="ap",
        resource="pennsylvania",
        url="https://api.example/ap",
        sequence=n,
        sha256="0" * 64,
        previous_sha256=None,
        size=1,
        content_type="application/json",
        validators=Validators(),
        detected_at=datetime(2026, 11, 4, tzinfo=UTC),
        extension="json",
        election=facts,
    )


def test_small_batches_are_folded_into_the_next_one_told() -> None:
    """``min_votes = 300``: batches of 100 and 150 are folded; the third (200) is told with all
    450 votes since the last one told, its shares over them, and the margin before the first."""
    counts = [{"a": 1000, "b": 800}, {"a": 1100, "b": 800}, {"a": 1150, "b": 900}, {"a": 1250, "b": 1000}]
    fold = NumbersFold(min_votes=300, min_margin_change=0)
    views = [fold.view(batch_event(n, race(counts[n - 1]), race(counts[n]))) for n in (1, 2, 3)]
    assert views[0] is None and views[1] is None
    assert views[2] is not None
    [told_batch] = [f for f in views[2].election if f.type == "votes_counted"]
    new = told_batch.new or {}
    assert new["votes_added"] == 450 and new["folded"] is True
    assert [(c["candidate_id"], c["votes_added"], c["share_of_batch"]) for c in new["candidates_batch"]] == [
        ("a", 250, 55.6),
        ("b", 200, 44.4),
    ]
    assert new["margin_before"]["margin_votes"] == 200 and new["margin_after"]["margin_votes"] == 250
    assert fold.view(batch_event(3, race(counts[2]), race(counts[3]))) is views[2]  # asked again: the same


def test_a_batch_that_barely_moves_the_margin_waits_for_one_that_does() -> None:
    fold = NumbersFold(min_votes=0, min_margin_change=1.0)
    quiet = fold.view(batch_event(1, race({"a": 1000, "b": 990}), race({"a": 1001, "b": 990})))
    loud = fold.view(batch_event(2, race({"a": 1001, "b": 990}), race({"a": 1100, "b": 990})))
    assert quiet is None
    assert loud is not None and [f.type for f in loud.election] == ["votes_counted"]
    assert (loud.election[0].new or {})["votes_added"] == 100


def vote(share: float | None, cantons: tuple[float, float, float, float] = (0, 0, 0, 0)) -> dict[str, Any]:
    """A national vote file with one proposal: its yes share, and its cantons (yes whole, yes
    half, no whole, no half)."""
    proposal: dict[str, Any] = {
        "vorlagenId": 6600,
        "vorlagenTitel": [{"langKey": "de", "text": "Initiative X"}],
        "staende": dict(
            zip(
                ("jaStaendeGanz", "jaStaendeHalb", "neinStaendeGanz", "neinStaendeHalb"), cantons, strict=True
            )
        ),
    }
    if share is not None:
        proposal["resultat"] = {"jaStimmenInProzent": share}
    return {"schweiz": {"vorlagen": [proposal]}}


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (vote(49.8), vote(50.3), [("majority:6600:people", "yes")]),
        (vote(50.3), vote(50.0), []),  # a tie leads nobody
        (vote(None), vote(51.0), []),  # no figure before: nothing tipped
        (vote(51.0, (10, 2, 8, 2)), vote(51.0, (10, 2, 11, 4)), [("majority:6600:cantons", "no")]),
        (
            vote(48.0, (12, 1, 8, 5)),
            vote(52.0, (11, 1, 12, 5)),
            [("majority:6600:people", "yes"), ("majority:6600:cantons", "no")],
        ),
    ],
)
def test_a_proposals_majority_tipping(
    old: dict[str, Any], new: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    facts = [
        f for f in fso_facts("sd-t-17-02-20240609-eidgAbstimmung", old, new) if f.type == "majority_changed"
    ]
    assert [(f.subject, f.state) for f in facts] == expected
    first = fso_facts("sd-t-17-02-20240609-eidgAbstimmung", None, new)
    assert not [f for f in first if f.type == "majority_changed"]  # a first version tips nothing
