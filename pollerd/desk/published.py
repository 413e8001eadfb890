"""AP's snapshot as the newsroom publishes it: the races whose call the desk decides carry the
desk's call in their winner flags (AP's own kept as each candidate's ``apWinner``). Only those
races are copied; the others are AP's, as they are."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pollerd.election.ap import Race, race_key, top_unit

Calls = Mapping[str, str]  # race key -> the call published (``X:<ids>``, ``R:<ids>``, empty: none)


def as_published(snapshot: dict[str, Any], calls: Calls) -> dict[str, Any]:
    """The snapshot document with the desk's calls in place of AP's flags (the same document
    when the desk decides none of its races)."""
    if not calls:
        return snapshot
    races = snapshot.get("races") or []
    if not any(isinstance(race, dict) and race_key(race) in calls for race in races):
        return snapshot
    return snapshot | {
        "races": [
            _published(race, calls[race_key(race)])
            if isinstance(race, dict) and race_key(race) in calls
            else race
            for race in races
        ]
    }


def _published(race: Race, call: str) -> Race:
    flag, _, listed = call.partition(":")
    winners = set(listed.split(",")) if listed else set()
    top = top_unit(race)

    def candidate(c: Any) -> Any:
        if not isinstance(c, dict):
            return c
        ids = {str(c.get("candidateID") or ""), str(c.get("polID") or "")}
        return {**c, "apWinner": c.get("winner") or "", "winner": flag if ids & winners else ""}

    units = [
        {**unit, "candidates": [candidate(c) for c in unit.get("candidates") or []]} if unit is top else unit
        for unit in race.get("reportingUnits") or []
    ]
    return {**race, "reportingUnits": units}
