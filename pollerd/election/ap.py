"""AP race calls from two consecutive snapshots: called, changed, retracted, runoff, complete.

The winner flag (``winner``: ``X`` won, ``R`` goes to a runoff) sits on the candidates of the race's
top reporting unit (national or state). Ballot measures (office ``I``) are called the same way; their
"candidates" are Yes and No.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from pollerd.core.election import Fact

Race = dict[str, Any]
_TOP_LEVELS = ("national", "state")


def race_key(race: Race) -> str:
    """``statePostal:raceID:raceTypeID``: race IDs are unique only within a state."""
    state = race.get("statePostal")
    if not state:
        units = race.get("reportingUnits") or [{}]
        state = units[0].get("statePostal", "") if isinstance(units[0], dict) else ""
    return f"{state}:{race.get('raceID', '')}:{race.get('raceTypeID') or race.get('raceType', '')}"


def ap_facts(old: Any, new: Any) -> list[Fact]:
    """The election events between two AP snapshots (``old`` None: the first version)."""
    return race_facts(None if old is None else races_of(old), races_of(new))


def race_facts(
    before: Mapping[str, Race] | None, after: Mapping[str, Race], keys: Iterable[str] | None = None
) -> list[Fact]:
    """The election events between two versions' races by key (``before`` None: the first
    version), looking only at ``keys`` where the caller knows which races changed."""
    facts: list[Fact] = []
    for key in sorted(after if keys is None else keys):
        race = after.get(key)
        previous = None if before is None else before.get(key)
        if race is None or race is previous:  # a race object is never changed in place
            continue
        facts += _call_facts(key, previous, race) + _complete_facts(key, previous, race)
    return facts


def races_of(document: Any) -> dict[str, Race]:
    """A snapshot document's races by key."""
    if not isinstance(document, dict):
        return {}
    return {race_key(r): r for r in document.get("races") or [] if isinstance(r, dict)}


def _call_facts(key: str, old: Race | None, new: Race) -> list[Fact]:
    was, now = _flagged(old, "X"), _flagged(new, "X")
    was_runoff, now_runoff = _flagged(old, "R"), _flagged(new, "R")
    initial = old is None
    facts = []
    if now and not was:
        facts.append(_call("race_called", key, old, new, "X", initial))
    elif now and was and _ids(now) != _ids(was):
        facts.append(_call("call_changed", key, old, new, "X", initial))
    elif was and not now and not now_runoff:
        retracted = _call("call_retracted", key, old, new, "", initial)
        if _flagged(new, "N"):  # AP's "N": the winner was overturned
            retracted = dataclasses.replace(retracted, new=(retracted.new or {}) | {"reason": "overturned"})
        facts.append(retracted)
    if now_runoff and _ids(now_runoff) != _ids(was_runoff):
        facts.append(_call("runoff", key, old, new, "R", initial))
    return facts


def _complete_facts(key: str, old: Race | None, new: Race) -> list[Fact]:
    if not _complete(new) or (old is not None and _complete(old)):
        return []
    unit = _top(new)
    return [
        Fact(
            type="race_complete",
            key=key,
            subject=f"complete:{key}",
            state="complete",
            old=None,
            new=race_fields(new) | {"precincts_reporting_pct": unit.get("precinctsReportingPct")},
            at=unit.get("lastUpdated"),
            scope=_scope(new),
            initial=old is None,
        )
    ]


def _call(kind: str, key: str, old: Race | None, new: Race, flag: str, initial: bool) -> Fact:
    winners = _flagged(new, flag) if flag else []
    state = f"{flag}:{','.join(sorted(c['id'] for c in winners))}" if flag else ""
    return Fact(
        type=kind,
        key=key,
        subject=f"call:{key}",
        state=state,
        old=_call_fields(old, "X") if old is not None and _flagged(old, "X") else None,
        new=_call_fields(new, flag) if flag else race_fields(new),
        at=_called_at(new, winners),
        scope=_scope(new),
        initial=initial,
    )


def call_state(race: Race) -> str:
    """AP's call of a race as a fact's state: ``X:<ids>`` (won), ``R:<ids>`` (runoff), or empty."""
    for flag in ("X", "R"):
        flagged = _flagged(race, flag)
        if flagged:
            return f"{flag}:{','.join(sorted(c['id'] for c in flagged))}"
    return ""


def candidates(race: Race) -> list[dict[str, Any]]:
    """The candidates of a race's top unit: id, name, party, votes, share, AP's flag."""
    return _flagged(race, None)


def scope(race: Race) -> dict[str, Any]:
    """What subscriptions and the desk's rules filter a race's facts on."""
    return _scope(race)


def call_fields(race: Race, state: str) -> dict[str, Any]:
    """The race and the candidate(s) a call state names (``X:<ids>``), as an editor reads them."""
    ids = set(state.partition(":")[2].split(",")) if state else set()
    return _fields_of(race, [c for c in candidates(race) if c["id"] in ids])


def _call_fields(race: Race, flag: str) -> dict[str, Any]:
    """The race and its (first) flagged candidate, as an editor reads them."""
    return _fields_of(race, _flagged(race, flag))


def _fields_of(race: Race, winners: list[dict[str, Any]]) -> dict[str, Any]:
    first = winners[0] if winners else {}
    unit = _top(race)
    return race_fields(race) | {
        "candidate": first.get("name"),
        "candidate_id": first.get("id"),
        "party": first.get("party"),
        "votes": first.get("votes"),
        "share": first.get("share"),
        "candidates": [w["name"] for w in winners],
        "precincts_reporting_pct": unit.get("precinctsReportingPct"),
    }


def race_fields(race: Race) -> dict[str, Any]:
    """The race as an editor reads it: its name, office, state, AP's call status."""
    unit = _top(race)
    office = race.get("officeName") or race.get("officeID") or ""
    seat = race.get("seatName")
    return {
        "race": f"{office}, {seat}" if seat else office,
        "race_id": race.get("raceID"),
        "office": race.get("officeID"),
        "state": race.get("statePostal") or unit.get("statePostal"),
        "state_name": unit.get("stateName"),
        "race_call_status": race.get("raceCallStatus"),
        "ballot_measure": race.get("officeID") == "I",
    }


def _flagged(race: Race | None, flag: str | None) -> list[dict[str, Any]]:
    """The top unit's candidates whose winner flag is ``flag`` (None: all), with their vote
    share."""
    if race is None:
        return []
    listed = [c for c in _top(race).get("candidates") or [] if isinstance(c, dict)]
    total = sum(_votes(c) for c in listed)
    return [
        {
            "id": str(c.get("candidateID") or c.get("polID") or ""),
            "name": " ".join(str(part) for part in (c.get("first"), c.get("last")) if part),
            "party": c.get("party"),
            "votes": _votes(c),
            "share": round(100 * _votes(c) / total, 1) if total else None,
            "winner_at": c.get("winnerDateTime"),
            "flag": str(c.get("winner") or "").upper(),
        }
        for c in listed
        if flag is None or str(c.get("winner") or "").upper() == flag
    ]


def _ids(flagged: list[dict[str, Any]]) -> set[str]:
    return {c["id"] for c in flagged}


def _votes(candidate: dict[str, Any]) -> int:
    votes = candidate.get("voteCount")
    return votes if isinstance(votes, int) else 0


def top_unit(race: Race) -> dict[str, Any]:
    """The race's top reporting unit (national or state), where AP sets its winner flags."""
    units = [u for u in race.get("reportingUnits") or [] if isinstance(u, dict)]
    return next((u for u in units if u.get("level") in _TOP_LEVELS), units[0] if units else {})


_top = top_unit


def _complete(race: Race) -> bool:
    unit = _top(race)
    total, reporting = unit.get("precinctsTotal"), unit.get("precinctsReporting")
    if isinstance(total, int) and isinstance(reporting, int) and total > 0:
        return reporting >= total
    pct = unit.get("precinctsReportingPct")
    return isinstance(pct, (int, float)) and pct >= 100


def _called_at(race: Race, winners: list[dict[str, Any]]) -> str | None:
    """When AP made the call: a call time only (a candidate's or the race's ``winnerDateTime``),
    never the unit's ``lastUpdated``, which times the results and is not comparable with a call
    time. A retraction has no winners, and AP sends no time for it: None (its order among the
    stories of the race is then its version's)."""
    stamp = next((w["winner_at"] for w in winners if w.get("winner_at")), None)
    return stamp or (race.get("winnerDateTime") if winners else None)


def _scope(race: Race) -> dict[str, Any]:
    return {"state": race.get("statePostal") or _top(race).get("statePostal"), "office": race.get("officeID")}
