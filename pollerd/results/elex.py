"""An AP snapshot as the rows of elex's tables: ``races`` (one row per race), ``reporting-units``
(one per reporting unit of a race) and ``results`` (the CSV: one row per candidate per reporting
unit), with elex's columns, in elex's order, with elex's values (``id`` is
``<raceid>-<polid-N | polnum-N | candidateid for a ballot measure>-<level>-<reportingunitid>``,
``level`` ``subunit`` becomes ``county``, or ``township`` in New England; ``votepct`` and
``precinctsreportingpct`` are fractions; ``winner`` and ``runoff`` are booleans), so a newsroom
can swap elex out of a cron job and keep its views and queries.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from pollerd.core.election import table
from pollerd.election.ap import race_key

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
RACE_COLUMNS = (  # elex races
    "id",
    "raceid",
    "racetype",
    "racetypeid",
    "description",
    "electiondate",
    "initialization_data",
    "lastupdated",
    "national",
    "officeid",
    "officename",
    "party",
    "seatname",
    "seatnum",
    "statename",
    "statepostal",
    "test",
    "uncontested",
)
REPORTING_UNIT_COLUMNS = (  # elex reporting-units
    "id",
    "reportingunitid",
    "reportingunitname",
    "description",
    "electiondate",
    "fipscode",
    "initialization_data",
    "lastupdated",
    "level",
    "national",
    "officeid",
    "officename",
    "precinctsreporting",
    "precinctsreportingpct",
    "precinctstotal",
    "raceid",
    "racetype",
    "racetypeid",
    "seatname",
    "seatnum",
    "statename",
    "statepostal",
    "test",
    "uncontested",
    "votecount",
)
NEW_ENGLAND = frozenset({"CT", "MA", "ME", "NH", "RI", "VT"})  # they report by township
PCT_PRECISION = 6


def is_snapshot(document: Any) -> bool:
    """Whether a payload is an AP snapshot (or answer): an object with a list of races."""
    return isinstance(document, dict) and isinstance(document.get("races"), list)


def results_rows(snapshot: dict[str, Any]) -> list[dict[str, Any]]:
    """Every candidate of every reporting unit of every race, as elex's ``results`` rows."""
    return elex_tables(snapshot).results


@dataclass
class ElexTables:
    """A snapshot's races as the rows of elex's three tables."""

    races: list[dict[str, Any]] = field(default_factory=list)
    reporting_units: list[dict[str, Any]] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)

    def lists(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
        """The three tables' rows: races, reporting units, results."""
        return self.races, self.reporting_units, self.results


def elex_tables(snapshot: dict[str, Any], keys: Collection[str] | None = None) -> ElexTables:
    """The rows of a snapshot's races (only those whose race key is in ``keys``, when given)."""
    date = snapshot.get("electionDate")
    tables = ElexTables()
    for race in snapshot.get("races") or []:
        if not isinstance(race, dict) or (keys is not None and race_key(race) not in keys):
            continue
        units = [u for u in race.get("reportingUnits") or [] if isinstance(u, dict)]
        tables.races.append(_race_row(race, units, date))
        for unit in units:
            tables.reporting_units.append(_unit_row(race, unit, date))
            tables.results += [_row(race, unit, candidate, date) for candidate in _candidates(unit)]
    return tables


def to_csv(rows: list[dict[str, Any]]) -> bytes:
    """The rows as elex writes them: a header, then one line per row (booleans as True/False)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, COLUMNS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def _race_row(race: dict[str, Any], units: list[dict[str, Any]], date: Any) -> dict[str, Any]:
    stamps = [u["lastUpdated"] for u in units if isinstance(u.get("lastUpdated"), str)]
    state = race.get("statePostal") or (units[0].get("statePostal") if units else None)
    return {
        "id": race.get("raceID"),
        "raceid": race.get("raceID"),
        "racetype": race.get("raceType"),
        "racetypeid": race.get("raceTypeID"),
        "description": race.get("description"),
        "electiondate": date,
        "initialization_data": False,
        "lastupdated": race.get("lastUpdated") or max(stamps, default=None),
        "national": bool(race.get("national", False)),
        "officeid": race.get("officeID"),
        "officename": race.get("officeName"),
        "party": race.get("party"),
        "seatname": race.get("seatName"),
        "seatnum": race.get("seatNum"),
        "statename": next((u["stateName"] for u in units if u.get("stateName")), None),
        "statepostal": state,
        "test": bool(race.get("test", False)),
        "uncontested": bool(race.get("uncontested", False)),
    }


def _unit_row(race: dict[str, Any], unit: dict[str, Any], date: Any) -> dict[str, Any]:
    state = race.get("statePostal") or unit.get("statePostal")
    unit_id = _unit_id(unit, state)
    reporting, precincts = _int(unit.get("precinctsReporting")), _int(unit.get("precinctsTotal"))
    uncontested = bool(race.get("uncontested", False))
    return {
        "id": unit_id,
        "reportingunitid": unit_id,
        "reportingunitname": unit.get("reportingunitName"),
        "description": race.get("description"),
        "electiondate": date,
        "fipscode": _fips(unit),
        "initialization_data": False,
        "lastupdated": unit.get("lastUpdated") or race.get("lastUpdated"),
        "level": _level(str(unit.get("level") or ""), state),
        "national": bool(race.get("national", False)),
        "officeid": race.get("officeID"),
        "officename": race.get("officeName"),
        "precinctsreporting": reporting,
        "precinctsreportingpct": _share(unit.get("precinctsReportingPct"), reporting, precincts),
        "precinctstotal": precincts,
        "raceid": race.get("raceID"),
        "racetype": race.get("raceType"),
        "racetypeid": race.get("raceTypeID"),
        "seatname": race.get("seatName"),
        "seatnum": race.get("seatNum"),
        "statename": unit.get("stateName") or table(race).get("stateName"),
        "statepostal": state,
        "test": bool(race.get("test", False)),
        "uncontested": uncontested,
        "votecount": None if uncontested else sum(_int(c.get("voteCount")) for c in _candidates(unit)),
    }


def _unit_id(unit: dict[str, Any], state: Any) -> str:
    level = _level(str(unit.get("level") or ""), state)
    return f"{level}-{unit.get('reportingunitID') or ('1' if level == 'state' else '')}"


def _fips(unit: dict[str, Any]) -> str | None:
    return str(unit["fipsCode"]).zfill(5) if unit.get("fipsCode") else None


def _candidates(unit: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in unit.get("candidates") or [] if isinstance(c, dict)]


def _row(race: dict[str, Any], unit: dict[str, Any], candidate: dict[str, Any], date: Any) -> dict[str, Any]:
    state = race.get("statePostal") or unit.get("statePostal")
    level = _level(str(unit.get("level") or ""), state)
    unit_id = _unit_id(unit, state)
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
    row = {
        "id": f"{race.get('raceID')}-{unique}-{unit_id}",
        "raceid": race.get("raceID"),
        "racetype": race.get("raceType"),
        "racetypeid": race.get("raceTypeID"),
        "ballotorder": candidate.get("ballotOrder"),
        "candidateid": candidate.get("candidateID"),
        "description": race.get("description"),
        "delegatecount": _int(candidate.get("delegateCount")),
        "electiondate": date,
        "fipscode": _fips(unit),
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
    if "apWinner" in candidate:  # not elex's: AP's own flag where the desk publishes another call
        row["ap_winner"] = str(candidate["apWinner"]).upper() == "X"
    return row


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
