"""An AP snapshot as the rows of elex's ``results`` CSV: one row per candidate per reporting
unit, with elex's columns, in elex's order, with elex's values (``id`` is
``<raceid>-<polid-N | polnum-N | candidateid for a ballot measure>-<level>-<reportingunitid>``,
``level`` ``subunit`` becomes ``county``, or ``township`` in New England; ``votepct`` and
``precinctsreportingpct`` are fractions; ``winner`` and ``runoff`` are booleans), so a newsroom
can swap elex out of a cron job and keep its views and queries.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from pollerd.core.election import table

COLUMNS = (
    "id",
    "raceid",
    "racetype",
    "racetypeid",
    "ballotorder",
    "candidateid",
    "description",
    "delegatecount",
    "electiondate",
    "fipscode",
    "first",
    "incumbent",
    "initialization_data",
    "is_ballot_measure",
    "last",
    "lastupdated",
    "level",
    "national",
    "officeid",
    "officename",
    "party",
    "polid",
    "polnum",
    "precinctsreporting",
    "precinctsreportingpct",
    "precinctstotal",
    "reportingunitid",
    "reportingunitname",
    "runoff",
    "seatname",
    "seatnum",
    "statename",
    "statepostal",
    "test",
    "uncontested",
    "votecount",
    "votepct",
    "winner",
)
NEW_ENGLAND = frozenset({"CT", "MA", "ME", "NH", "RI", "VT"})  # they report by township
PCT_PRECISION = 6


def is_snapshot(document: Any) -> bool:
    """Whether a payload is an AP snapshot (or answer): an object with a list of races."""
    return isinstance(document, dict) and isinstance(document.get("races"), list)


def results_rows(snapshot: dict[str, Any]) -> list[dict[str, Any]]:
    """Every candidate of every reporting unit of every race, as elex's ``results`` rows."""
    date = snapshot.get("electionDate")
    return [
        _row(race, unit, candidate, date)
        for race in snapshot.get("races") or []
        if isinstance(race, dict)
        for unit in race.get("reportingUnits") or []
        if isinstance(unit, dict)
        for candidate in _candidates(unit)
    ]


def to_csv(rows: list[dict[str, Any]]) -> bytes:
    """The rows as elex writes them: a header, then one line per row (booleans as True/False)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def _candidates(unit: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in unit.get("candidates") or [] if isinstance(c, dict)]


def _row(race: dict[str, Any], unit: dict[str, Any], candidate: dict[str, Any], date: Any) -> dict[str, Any]:
    state = race.get("statePostal") or unit.get("statePostal")
    level = _level(str(unit.get("level") or ""), state)
    unit_id = f"{level}-{unit.get('reportingunitID') or ('1' if level == 'state' else '')}"
    measure = race.get("officeID") == "I"
    polid = candidate.get("polID") if candidate.get("polID") not in (None, "", "0") else None
    unique = (
        candidate.get("candidateID")
        if measure
        else f"polid-{polid}"
        if polid
        else f"polnum-{candidate.get('polNum')}"
    )
    votes = _int(candidate.get("voteCount"))
    total = sum(_int(c.get("voteCount")) for c in _candidates(unit))
    reporting, precincts = _int(unit.get("precinctsReporting")), _int(unit.get("precinctsTotal"))
    return {
        "id": f"{race.get('raceID')}-{unique}-{unit_id}",
        "raceid": race.get("raceID"),
        "racetype": race.get("raceType"),
        "racetypeid": race.get("raceTypeID"),
        "ballotorder": candidate.get("ballotOrder"),
        "candidateid": candidate.get("candidateID"),
        "description": race.get("description"),
        "delegatecount": _int(candidate.get("delegateCount")),
        "electiondate": date,
        "fipscode": str(unit["fipsCode"]).zfill(5) if unit.get("fipsCode") else None,
        "first": candidate.get("first"),
        "incumbent": bool(candidate.get("incumbent", False)),
        "initialization_data": False,
        "is_ballot_measure": measure,
        "last": candidate.get("last"),
        "lastupdated": unit.get("lastUpdated") or race.get("lastUpdated"),
        "level": level,
        "national": bool(race.get("national", False)),
        "officeid": race.get("officeID"),
        "officename": race.get("officeName"),
        "party": candidate.get("party"),
        "polid": polid,
        "polnum": candidate.get("polNum"),
        "precinctsreporting": reporting,
        "precinctsreportingpct": _share(unit.get("precinctsReportingPct"), reporting, precincts),
        "precinctstotal": precincts,
        "reportingunitid": unit_id,
        "reportingunitname": unit.get("reportingunitName"),
        "runoff": str(candidate.get("winner") or "").upper() == "R",
        "seatname": race.get("seatName"),
        "seatnum": race.get("seatNum"),
        "statename": unit.get("stateName") or table(race).get("stateName"),
        "statepostal": state,
        "test": bool(race.get("test", False)),
        "uncontested": bool(race.get("uncontested", False)),
        "votecount": votes,
        "votepct": round(votes / total, PCT_PRECISION) if total else 0.0,
        "winner": str(candidate.get("winner") or "").upper() == "X",
    }


def _share(percent: Any, reporting: int, precincts: int) -> float:
    """AP's ``precinctsReportingPct`` (a percentage) as a fraction; computed where AP gives none."""
    if isinstance(percent, int | float) and not isinstance(percent, bool):
        return round(percent / 100, PCT_PRECISION)
    return round(reporting / precincts, PCT_PRECISION) if precincts else 0.0


def _level(level: str, state: Any) -> str:
    if level == "subunit":
        return "township" if state in NEW_ENGLAND else "county"
    return level


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
