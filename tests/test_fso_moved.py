"""What moved in FSO files, as tables: connected proposals told together once all three are
decided (the deciding question naming what it favours and what comes into force), and a canton's
count growing with its running figures."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from pollerd.election.fso import fso_facts

VOTE = "sd-t-17-02-20240303-eidgAbstimmung.json"


def proposal(
    number: int,
    kind: int,
    decided: bool,
    accepted: bool,
    share: float,
    cantons: tuple[float, float] = (20, 3),
) -> dict[str, Any]:
    """One proposal of a vote file (``cantons``: yes and no, whole cantons)."""
    entry: dict[str, Any] = {
        "vorlagenId": number,
        "vorlagenArtId": kind,
        "vorlagenTitel": [{"langKey": "de", "text": f"V{number}"}, {"langKey": "fr", "text": f"O{number}"}],
        "vorlageBeendet": decided,
        "vorlageAngenommen": accepted,
        "resultat": {"jaStimmenInProzent": share},
        "staende": {"jaStaendeGanz": cantons[0], "jaStaendeHalb": 0, "neinStaendeGanz": cantons[1]},
    }
    if kind in (5, 6):
        entry["hauptvorlagenId"] = 10
    return entry


def vote(*proposals: dict[str, Any]) -> dict[str, Any]:
    return {"schweiz": {"vorlagen": list(proposals)}}


def decided(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The proposal_decided facts between two versions, by proposal id: their new fields."""
    return {fact.key: fact.new or {} for fact in fso_facts(VOTE, old, new) if fact.type == "proposal_decided"}


def group(
    question_decided: bool = True, share: float = 45.0, cantons: tuple[float, float] = (5.0, 18.0)
) -> dict[str, Any]:
    """An initiative (10), its counter-proposal (11), the deciding question (12)."""
    return vote(
        proposal(10, 4, True, True, 55.0),
        proposal(11, 5, True, True, 58.0),
        proposal(12, 6, question_decided, False, share, cantons),
    )


def test_connected_proposals_wait_for_the_deciding_question_and_are_told_together() -> None:
    waiting = group(question_decided=False)
    assert decided(vote(), waiting) == {}
    told = decided(waiting, group())
    assert sorted(told) == ["10", "11", "12"]
    assert told["12"]["favours"] == "V11" and told["12"]["in_force"] == "V11"
    assert told["12"]["favours_titles"] == {"de": "V11", "fr": "O11"}
    assert sorted(told["10"]["connected"]) == ["V11", "V12"] and told["10"]["group"] == 10
    assert decided(group(), group()) == {}  # told once


@pytest.mark.parametrize(
    ("question", "favours"),
    [
        ({"share": 55.0, "cantons": (15.0, 8.0)}, "V10"),  # both majorities: the initiative
        ({"share": 45.0, "cantons": (5.0, 18.0)}, "V11"),  # neither: the counter-proposal
        # the people say yes (51%), the cantons no (10 of 23): 51 + 43.5 < 49 + 56.5
        ({"share": 51.0, "cantons": (10.0, 13.0)}, "V11"),
        # the people say no (49%), the cantons yes (20 of 23): 49 + 87 > 51 + 13
        ({"share": 49.0, "cantons": (20.0, 3.0)}, "V10"),
    ],
)
def test_the_deciding_question_favours_by_people_and_cantons(question: dict[str, Any], favours: str) -> None:
    assert decided(None, group(**question))["12"]["favours"] == favours


def test_what_comes_into_force_depends_on_what_passed() -> None:
    only_counter = group()
    only_counter["schweiz"]["vorlagen"][0]["vorlageAngenommen"] = False
    assert decided(None, only_counter)["12"]["in_force"] == "V11"
    neither = copy.deepcopy(only_counter)
    neither["schweiz"]["vorlagen"][1]["vorlageAngenommen"] = False
    assert decided(None, neither)["12"]["in_force"] is None


def test_a_group_shown_in_part_is_told_as_separate_proposals() -> None:
    partial = vote(proposal(10, 4, True, True, 55.0), proposal(11, 5, True, False, 48.0))
    told = decided(None, partial)
    assert sorted(told) == ["10", "11"] and "favours" not in told["10"] and "connected" not in told["11"]


def canton_vote(counted: int, total: int = 3, share: float = 48.5) -> dict[str, Any]:
    """A vote file whose canton 1 counted ``counted`` of its ``total`` municipalities."""
    municipalities = [{"resultat": {"gebietAusgezaehlt": n < counted}} for n in range(total)]
    canton = {
        "geoLevelnummer": "1",
        "geoLevelname": "Zürich",
        "resultat": {"gebietAusgezaehlt": counted == total, "jaStimmenInProzent": share},
        "gemeinden": municipalities,
    }
    entry = proposal(7, 2, False, False, share) | {"kantone": [canton]}
    return vote(entry)


def progress(old: dict[str, Any] | None, new: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(f.type, f.new or {}) for f in fso_facts(VOTE, old, new) if f.type.startswith("canton_")]


def test_a_canton_s_count_growing_is_told_with_its_running_figures() -> None:
    assert progress(None, canton_vote(1)) == []  # the first version: nothing before it
    ((kind, fields),) = progress(canton_vote(1), canton_vote(2, share=51.2))
    assert kind == "canton_progress"
    assert (fields["gemeinden_abgeschlossen"], fields["gemeinden_total"], fields["counted_added"]) == (
        2,
        3,
        1,
    )
    assert fields["yes_pct"] == 51.2 and fields["proposal"] == "V7"
    assert progress(canton_vote(2), canton_vote(2, share=52.0)) == []  # figures alone: no progress
    assert [kind for kind, _ in progress(canton_vote(2), canton_vote(3))] == ["canton_complete"]


def election(counted: int, strengths: dict[str, float] | None) -> dict[str, Any]:
    """An election file (``strengths``: the parties file's, None: a file without them)."""
    rows = [{"partei_bezeichnung_de": p, "partei_staerke": s} for p, s in (strengths or {}).items()]
    return {
        "stand_kantone": [
            {"kanton_nummer": 1, "kanton_bezeichnung": "Zürich", "kanton_abgeschlossen": False}
            | {"gemeinden_total": 160, "gemeinden_abgeschlossen": counted}
        ],
        "level_kantone": [{"kanton_nummer": 1, "resultat": rows}] if strengths is not None else [],
    }


def test_an_election_canton_progresses_with_its_strongest_parties_in_the_parties_file_only() -> None:
    parties = {"SVP": 27.9, "SP": 17.5, "FDP": 14.3, "Mitte": 14.1}
    ((kind, fields),) = progress(election(40, parties), election(52, parties))
    assert kind == "canton_progress" and fields["counted_added"] == 12
    assert [p["party"] for p in fields["parties"]] == ["SVP", "SP", "FDP"]
    assert progress(election(40, None), election(52, None)) == []  # turnout, candidates: quiet
