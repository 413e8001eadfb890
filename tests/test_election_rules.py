"""Election events from pairs of versions: every type of every feed, from a table of cases."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from pollerd.core.election import NUMBER_TYPES, Fact
from pollerd.core.model import Event, Validators
from pollerd.election.dc import dc_facts
from pollerd.election.fso import ballot_of, fso_facts
from pollerd.sources.ap import ap_rules
from pollerd.store.rows import announced

# --- AP ---------------------------------------------------------------------------------------


def ap_stories(resource: str, old: Any, new: Any) -> list[Fact]:
    """AP's rules, the calls and completions only (the numbers are ``test_election_numbers``'s)."""
    return [fact for fact in ap_rules(resource, old, new) if fact.type not in NUMBER_TYPES]


def race(
    race_id: str = "1001",
    office: str = "S",
    state: str = "PA",
    winner: str | None = None,
    reporting: int = 10,
    total: int = 40,
    names: tuple[str, str] = ("Rivera", "Walsh"),
) -> dict[str, Any]:
    """One AP race at state level; ``winner``: "X1" marks the first candidate, "R2" the second..."""
    candidates = [
        {"first": "Alex", "last": last, "party": party, "candidateID": f"{race_id}{n}", "voteCount": votes}
        for n, (last, party, votes) in enumerate(((names[0], "Dem", 600), (names[1], "GOP", 400)), start=1)
    ]
    if winner:
        candidates[int(winner[1]) - 1]["winner"] = winner[0]
        candidates[int(winner[1]) - 1]["winnerDateTime"] = "2026-11-04T02:43:00Z"
    return {
        "raceID": race_id,
        "raceTypeID": "G",
        "officeID": office,
        "officeName": {"S": "U.S. Senate", "I": "Question 1"}.get(office, "Governor"),
        "statePostal": state,
        "raceCallStatus": "Called" if winner else "Too Early to Call",
        "reportingUnits": [
            {
                "level": "state",
                "statePostal": state,
                "stateName": "Pennsylvania",
                "lastUpdated": "2026-11-04T02:40:00Z",
                "precinctsReporting": reporting,
                "precinctsTotal": total,
                "precinctsReportingPct": round(100 * reporting / total, 1),
                "candidates": candidates,
            }
        ],
    }


def snapshot(*races: dict[str, Any]) -> dict[str, Any]:
    """An AP snapshot as the AP source records it."""
    return {"electionDate": "2026-11-03", "races": list(races)}


def kinds(facts: list[Fact]) -> list[tuple[str, str, bool]]:
    """(type, key, initial) of each fact."""
    return [(f.type, f.key, f.initial) for f in facts]


AP_CASES = [
    ("nothing called", snapshot(race()), snapshot(race(reporting=12)), []),
    ("a call appears", snapshot(race()), snapshot(race(winner="X1")), [("race_called", "PA:1001:G", False)]),
    (
        "a call disappears",
        snapshot(race(winner="X1")),
        snapshot(race()),
        [("call_retracted", "PA:1001:G", False)],
    ),
    (
        "the call moves",
        snapshot(race(winner="X1")),
        snapshot(race(winner="X2")),
        [("call_changed", "PA:1001:G", False)],
    ),
    ("a runoff", snapshot(race()), snapshot(race(winner="R1")), [("runoff", "PA:1001:G", False)]),
    (
        "two races called in one delta",
        snapshot(race("1001"), race("1002", office="G")),
        snapshot(race("1001", winner="X1"), race("1002", office="G", winner="X2")),
        [("race_called", "PA:1001:G", False), ("race_called", "PA:1002:G", False)],
    ),
    (
        "all precincts in",
        snapshot(race()),
        snapshot(race(reporting=40)),
        [("race_complete", "PA:1001:G", False)],
    ),
    (
        "first version: the state as it is, marked initial",
        None,
        snapshot(race("1001", winner="X1"), race("1002"), race("1003", reporting=40)),
        [("race_called", "PA:1001:G", True), ("race_complete", "PA:1003:G", True)],
    ),
    (
        "a race new to the snapshot is initial",
        snapshot(race("1001")),
        snapshot(race("1001"), race("1002", winner="X1")),
        [("race_called", "PA:1002:G", True)],
    ),
    (
        "a ballot measure is called yes",
        snapshot(race(office="I", names=("Yes", "No"))),
        snapshot(race(office="I", names=("Yes", "No"), winner="X1")),
        [("race_called", "PA:1001:G", False)],
    ),
]


@pytest.mark.parametrize(("old", "new", "expected"), [c[1:] for c in AP_CASES], ids=[c[0] for c in AP_CASES])
def test_ap_events(old: Any, new: Any, expected: list[tuple[str, str, bool]]) -> None:
    """Each AP event type comes from the pair of snapshots that shows it, and only from it."""
    assert kinds(ap_stories("senate", old, new)) == expected


def test_ap_call_fields() -> None:
    """A call names the candidate, party, votes, share and precincts, AP's call status and time."""
    (fact,) = ap_stories("senate", snapshot(race()), snapshot(race(winner="X1")))
    assert fact.new is not None
    assert fact.new["candidate"] == "Alex Rivera"
    assert (fact.new["party"], fact.new["votes"], fact.new["share"]) == ("Dem", 600, 60.0)
    assert fact.new["precincts_reporting_pct"] == 25.0
    assert fact.new["race_call_status"] == "Called"
    assert fact.at == "2026-11-04T02:43:00Z"
    assert fact.scope == {"state": "PA", "office": "S"}
    assert fact.old is None
    (retracted,) = ap_stories("senate", snapshot(race(winner="X1")), snapshot(race()))
    assert retracted.old is not None and retracted.old["candidate"] == "Alex Rivera"
    assert retracted.state == ""


def test_ap_raw_deltas_tell_nothing() -> None:
    """The raw ``.delta`` resource carries no election events (its query's snapshot does)."""
    assert ap_stories("senate.delta", snapshot(race()), snapshot(race(winner="X1"))) == []


# --- FSO --------------------------------------------------------------------------------------


def election_file(
    complete: dict[int, Any], figures: dict[int, int] | None = None, final: bool = False
) -> dict[str, Any]:
    """An FSO election file: per canton its completion flag and one figure."""
    figures = figures or {}
    return {
        "timestamp": "2023-10-22T16:20:00",
        "stand": {"wahl_abgeschlossen": final, "kantone_total": len(complete)},
        "stand_kantone": [
            {
                "kanton_nummer": n,
                "kanton_bezeichnung": {1: "ZH", 2: "BE"}.get(n, "?"),
                "kanton_abgeschlossen": flag,
            }
            for n, flag in complete.items()
        ],
        "level_kantone": [{"kanton_nummer": n, "stimmen": figures.get(n, 100)} for n in complete],
    }


def vote_file(decided: bool, accepted: bool, counted: dict[int, bool]) -> dict[str, Any]:
    """An FSO vote file with one proposal."""
    return {
        "abstimmtag": "20230618",
        "timestamp": "2023-06-18T15:00:00",
        "schweiz": {
            "vorlagen": [
                {
                    "vorlagenId": 6650,
                    "vorlagenTitel": [{"langKey": "de", "text": "Klimagesetz"}],
                    "vorlageBeendet": decided,
                    "vorlageAngenommen": accepted,
                    "provisorisch": True,
                    "resultat": {"jaStimmenInProzent": 59.1},
                    "staende": {"jaStaendeGanz": 14, "neinStaendeGanz": 6},
                    "kantone": [
                        {
                            "geoLevelnummer": n,
                            "geoLevelname": "Zürich",
                            "resultat": {"gebietAusgezaehlt": flag},
                        }
                        for n, flag in counted.items()
                    ],
                }
            ]
        },
    }


NRW = "sd-t-17-02-nrw2023-parteien"
FSO_CASES = [
    ("nothing finished", election_file({1: False}), election_file({1: False}, {1: 200}), []),
    (
        "a canton finishes",
        election_file({1: False}),
        election_file({1: True}),
        [("canton_complete", "NRW2023:1", False)],
    ),
    (
        "a finished canton reopens (the flag as the string 'false')",
        election_file({1: True}),
        election_file({1: "false"}),
        [("canton_reopened", "NRW2023:1", False)],
    ),
    (
        "a finished canton's figures change",
        election_file({1: True}),
        election_file({1: True}, {1: 101}),
        [("count_corrected", "NRW2023:1", False)],
    ),
    (
        "an unfinished canton's figures change: counting, not a correction",
        election_file({1: False}),
        election_file({1: False}, {1: 150}),
        [],
    ),
    (
        "the last canton finishes: the ballot is final",
        election_file({1: True, 2: False}),
        election_file({1: True, 2: True}, final=True),
        [("canton_complete", "NRW2023:2", False), ("result_final", "NRW2023", False)],
    ),
    (
        "first version: finished cantons, marked initial",
        None,
        election_file({1: True, 2: False}),
        [("canton_complete", "NRW2023:1", True)],
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "expected"), [c[1:] for c in FSO_CASES], ids=[c[0] for c in FSO_CASES]
)
def test_fso_events(old: Any, new: Any, expected: list[tuple[str, str, bool]]) -> None:
    """Each FSO election-file event comes from the pair of versions that shows it."""
    assert kinds(fso_facts(NRW, old, new)) == expected


def test_fso_canton_fields() -> None:
    """A canton event names the canton as the file does, with the FSO's time as UTC."""
    (fact,) = fso_facts(NRW, election_file({1: False}), election_file({1: True}))
    assert fact.new is not None and fact.new["canton_name"] == "ZH"
    assert fact.scope == {"canton": 1}
    assert fact.at == "2023-10-22T14:20:00Z"
    assert fact.subject == "canton:NRW2023:1"


def test_fso_vote_events() -> None:
    """A vote file: a canton counted, then the proposal decided (and a decision that flips)."""
    before = vote_file(False, False, {1: False})
    counted = vote_file(False, False, {1: True})
    decided = vote_file(True, True, {1: True})
    assert kinds(fso_facts("vote", before, counted)) == [("canton_complete", "6650:1", False)]
    (fact,) = fso_facts("vote", counted, decided)
    assert (fact.type, fact.state, fact.new and fact.new["proposal"]) == (
        "proposal_decided",
        "accepted",
        "Klimagesetz",
    )
    assert kinds(fso_facts("vote", decided, vote_file(True, False, {1: True}))) == [
        ("proposal_decided", "6650", False)
    ]
    assert fso_facts("vote", decided, copy.deepcopy(decided)) == []


def test_ballot_of_a_file() -> None:
    """Files of one ballot share it (so their cantons tell one story); others keep their name."""
    assert ballot_of("sd-t-17.02-NRW2023-wahlbeteiligung") == "NRW2023"
    assert ballot_of("sd-t-17-02-srw2023-kandidierende") == "SRW2023"
    assert ballot_of("results") == "results"


# --- Democracy Club ----------------------------------------------------------------------------


def dc_ballot(ballot_id: str, people: list[str], cancelled: bool = False) -> dict[str, Any]:
    """A ballot as the /postcode answer and the ballots feed show it."""
    return {
        "ballot_paper_id": ballot_id,
        "ballot_title": f"Ward {ballot_id}",
        "cancelled": cancelled,
        "cancellation_reason": "CANDIDATE_DEATH" if cancelled else None,
        "candidates": [
            {"person": {"ynr_id": n, "name": name}, "party": {"party_name": "Green Party"}}
            for n, name in enumerate(people, start=1)
        ],
    }


def answer(station: str, *ballots: dict[str, Any]) -> dict[str, Any]:
    """A /postcode answer: one date, its station and ballots."""
    where = {"station": {"properties": {"address": station}}}
    return {"dates": [{"date": "2026-05-07", "polling_station": where, "ballots": list(ballots)}]}


DC_CASES = [
    (
        "a ballot is cancelled",
        answer("Hall", dc_ballot("local.b", ["Ada"])),
        answer("Hall", dc_ballot("local.b", ["Ada"], cancelled=True)),
        [("ballot_cancelled", "local.b", False)],
    ),
    (
        "a candidate is added to ward A, one withdraws from ward B",
        answer("Hall", dc_ballot("local.a", ["Ada"]), dc_ballot("local.b", ["Bo", "Cy"])),
        answer("Hall", dc_ballot("local.a", ["Ada", "Dora"]), dc_ballot("local.b", ["Bo"])),
        [("candidate_added", "local.a", False), ("candidate_withdrawn", "local.b", False)],
    ),
    (
        "the polling station moves",
        answer("Hall", dc_ballot("local.a", ["Ada"])),
        answer("Sports Centre", dc_ballot("local.a", ["Ada"])),
        [("polling_station_changed", "local.a", False)],
    ),
    (
        "first version: a cancelled ballot as it is; its candidates are no news",
        None,
        answer("Hall", dc_ballot("local.a", ["Ada"]), dc_ballot("local.b", ["Bo"], cancelled=True)),
        [("ballot_cancelled", "local.b", True)],
    ),
]


@pytest.mark.parametrize(("old", "new", "expected"), [c[1:] for c in DC_CASES], ids=[c[0] for c in DC_CASES])
def test_dc_postcode_events(old: Any, new: Any, expected: list[tuple[str, str, bool]]) -> None:
    """Each Democracy Club event of a watched postcode comes from the pair that shows it."""
    assert kinds(dc_facts("postcode-AA12AA", old, new)) == expected


def test_dc_feed_and_election_events() -> None:
    """The ballots feed tells cancellations and candidates; a vanished election was withdrawn."""
    feed_before = dc_ballot("local.b", ["Ada"])
    feed_after = dc_ballot("local.b", ["Ada", "Bo"], cancelled=True)
    assert kinds(dc_facts("ballot-local.b", feed_before, feed_after)) == [
        ("ballot_cancelled", "local.b", False),
        ("candidate_added", "local.b", False),
    ]
    row = {"election_id": "local.x.2026-05-07", "election_title": "Council X"}
    (withdrawn,) = dc_facts("election-local.x.2026-05-07", row, {"id": "election-local.x", "vanished": True})
    assert (withdrawn.type, withdrawn.new and withdrawn.new["election_title"]) == (
        "election_withdrawn",
        "Council X",
    )
    added = dc_facts("ballot-local.b", feed_before, dc_ballot("local.b", ["Ada", "Bo"]))
    assert added[0].new is not None and added[0].new["candidate"] == "Bo"


# --- announcing: one story per subject ----------------------------------------------------------


def version(*facts: Fact) -> Event:
    """A version event carrying ``facts``."""
    when = datetime(2026, 11, 4, tzinfo=UTC)
    return Event(
        "v1", "src", "r", "http://x", 1, "0" * 64, None, 1, None, Validators(), when, "json", election=facts
    )


def call(state: str, at: str | None = None) -> Fact:
    """A call fact about one race in ``state``, told at ``at``."""
    return Fact("race_called" if state else "call_retracted", "PA:1:G", "call:PA:1:G", state, None, {}, at)


def test_a_subject_is_announced_only_when_its_state_changes() -> None:
    """A call already announced (by another query, or before a restart) is left out; a flip back
    and forth is announced flip by flip."""
    assert announced(version(call("X:1")), {"call:PA:1:G": ("X:1", None)}).election == ()
    assert announced(version(call("X:1")), {"call:PA:1:G": ("", None)}).election == (call("X:1"),)
    assert announced(version(call("X:1")), {}).election == (call("X:1"),)
    flips = version(call("X:1"), call(""), call("X:1"))
    assert len(announced(flips, {}).election) == 3
    assert announced(version(call("X:1"), call("X:1")), {}).election == (call("X:1"),)


def test_a_lagging_file_does_not_tell_an_old_story_again() -> None:
    """A fact older (by the upstream's time) than the last one told of its subject is left out:
    one file's "reopened" at 16:40 after another's "finished again" at 16:45."""
    last = {"call:PA:1:G": ("X:1", "2023-10-22T16:45:00Z")}
    assert announced(version(call("", "2023-10-22T16:40:00Z")), last).election == ()
    assert announced(version(call("", "2023-10-22T16:50:00Z")), last).election == (
        call("", "2023-10-22T16:50:00Z"),
    )
    assert announced(version(call("", None)), last).election == (call("", None),)  # no time: by state alone


def test_a_call_taken_back_and_made_again_without_new_votes_is_three_stories() -> None:
    """AP retracts with the unit's ``lastUpdated`` unchanged (older than the call time) and calls
    the same candidate again: the rules time the retraction by no call time (there is none),
    never by the results' ``lastUpdated``, so neither it nor the new call is taken for old news."""
    called, uncalled = race(winner="X1"), race()
    uncalled["reportingUnits"][0]["lastUpdated"] = "2026-11-04T02:40:00Z"  # before the call, 02:43
    again = race(winner="X1")
    again["reportingUnits"][0]["candidates"][0]["winnerDateTime"] = "2026-11-04T02:55:00Z"
    steps = [ap_stories("pa", None, snapshot(called))]
    steps.append(ap_stories("pa", snapshot(called), snapshot(uncalled)))
    steps.append(ap_stories("pa", snapshot(uncalled), snapshot(again)))
    assert [[f.type for f in facts] for facts in steps] == [
        ["race_called"],
        ["call_retracted"],
        ["race_called"],
    ]
    assert steps[1][0].at is None
    told: dict[str, tuple[str, str | None]] = {}
    kept = []
    for facts in steps:
        event = announced(version(*facts), told)
        for fact in event.election:
            told[fact.subject] = (fact.state, fact.at or told.get(fact.subject, ("", None))[1])
        kept += [fact.type for fact in event.election]
    assert kept == ["race_called", "call_retracted", "race_called"]


@pytest.mark.parametrize(
    ("people", "seats", "reason", "why", "unopposed"),
    [
        (["Ada"], 1, None, "elected unopposed: 1 candidate for 1 seat", True),
        (["Ada", "Bo"], 3, "EQUAL_CANDIDATES", "elected unopposed: 2 candidates for 3 seats", True),
        (["Ada", "Bo", "Cy"], 1, "CANDIDATE_DEATH", "CANDIDATE_DEATH", False),
        (["Ada", "Bo"], None, None, "no reason given", False),
    ],
)
def test_a_cancelled_ballot_says_why(
    people: list[str], seats: int | None, reason: str | None, why: str, unopposed: bool
) -> None:
    """Democracy Club's reason, or the poll not needed: as many candidates as seats, or fewer."""
    before = dc_ballot("local.b", people)
    after = dc_ballot("local.b", people, cancelled=True) | {
        "seats_contested": seats,
        "cancellation_reason": reason,
        "replaced_by": "local.b.2026-05-21",
    }
    (fact,) = dc_facts("ballot-local.b", before, after)
    new = fact.new or {}
    assert (new["why"], new["uncontested_elected"], new["replaced_by"]) == (
        why,
        unopposed,
        "local.b.2026-05-21",
    )
