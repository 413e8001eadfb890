"""An AP snapshot as the rows of elex 2.4.4's tables, as ``elex races``, ``elex reporting-units``
and ``elex results`` print them from the same document: the same columns in the same order, the
same values, so a newsroom can swap elex out of a cron job and keep its views and queries.

What elex does, and so we do: a race's ``lastUpdated`` (where AP gives one) stands for every unit
and row of the race; a state-level unit without ``reportingunitID`` is ``state-<postal>-1``;
``precinctsreportingpct`` is AP's percentage times 0.01 (0.0 where AP gives none);
``votepct`` is the candidate's share of the unit's votes (0.0 in an uncontested race); the
``statename`` of races and results comes from elex's own table of state names, a unit's from AP;
``subunit`` is ``county`` (``township`` in New England), and New England's townships are rolled
up into county units and rows (``county-NH-33013``; the rows' ``reportingunitid`` is
``NH-33013``, their ``winner`` and ``runoff`` False and ``electwon`` 0, as elex makes them).
``electtotal`` (a unit's electoral votes) and ``electwon`` (a candidate's) are AP's, 0 where absent.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from pollerd.election.ap import race_key
from pollerd.results.elex_names import NEW_ENGLAND_COUNTIES, STATE_NAMES

COLUMNS = (  # elex results
    "id",
    "raceid",
    "racetype",
    "racetypeid",
    "ballotorder",
    "candidateid",
    "description",
    "delegatecount",
    "electiondate",
    "electtotal",
    "electwon",
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
    "is_ballot_measure",
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
    "electtotal",
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
NEW_ENGLAND = frozenset(NEW_ENGLAND_COUNTIES)  # they report by township
PCT_PRECISION = 6
_MAIL_BALLOTS = "Mail Ballots C.D."  # a town-level unit elex leaves out of its county roll-ups


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
        shared = _shared(race, date)
        units = [_unit(shared, u) for u in race.get("reportingUnits") or [] if isinstance(u, dict)]
        state = str(units[-1].row["statepostal"]) if units else race.get("statePostal")
        if state in NEW_ENGLAND:
            units += _counties(state, units)
        tables.races.append(_race_row(race, shared, units, state))
        for unit in units:
            tables.reporting_units.append(unit.row)
            tables.results += unit.candidates
    return tables


def to_csv(rows: list[dict[str, Any]], columns: Sequence[str] = COLUMNS) -> bytes:
    """The rows as elex writes them: a header, then one line per row (booleans as True/False,
    None empty, floats as Python prints them)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


@dataclass
class _Unit:
    """A reporting unit's row and its candidates' rows."""

    row: dict[str, Any]
    candidates: list[dict[str, Any]]


def _shared(race: dict[str, Any], date: Any) -> dict[str, Any]:
    """What every unit and row of a race takes from the race."""
    return {
        "raceid": race.get("raceID"),
        "racetype": race.get("raceType"),
        "racetypeid": race.get("raceTypeID"),
        "description": race.get("description"),
        "electiondate": date,
        "initialization_data": False,
        "lastupdated": race.get("lastUpdated"),
        "national": race.get("national", False),
        "officeid": race.get("officeID"),
        "officename": race.get("officeName"),
        "seatname": race.get("seatName"),
        "seatnum": race.get("seatNum"),
        "test": race.get("test", False),
        "uncontested": race.get("uncontested", False),
    }


def _race_row(race: dict[str, Any], shared: dict[str, Any], units: list[_Unit], state: Any) -> dict[str, Any]:
    row = {key: shared[key] for key in RACE_COLUMNS if key in shared}
    return row | {
        "id": race.get("raceID"),
        "is_ballot_measure": any(c["is_ballot_measure"] for unit in units for c in unit.candidates),
        "party": race.get("party"),
        "statename": STATE_NAMES.get(state) if units else race.get("stateName"),
        "statepostal": state,
    }


def _unit(shared: dict[str, Any], unit: dict[str, Any]) -> _Unit:
    """An AP reporting unit as elex's unit row and result rows."""
    state = unit.get("statePostal")
    level = _level(unit.get("level"), state)
    given = unit.get("reportingunitID")
    unit_id = f"{level}-{given}" if given else f"state-{state}-1" if level == "state" else None
    fips = unit.get("fipsCode")
    row = shared | {
        "id": unit_id,
        "reportingunitid": unit_id,
        "reportingunitname": unit.get("reportingunitName"),
        "electtotal": unit.get("electTotal", 0),
        "fipscode": str(fips).zfill(5) if fips else fips,
        "lastupdated": shared["lastupdated"] or unit.get("lastUpdated"),
        "level": level,
        "precinctsreporting": unit.get("precinctsReporting", 0),
        "precinctsreportingpct": _number(unit.get("precinctsReportingPct")) * 0.01,
        "precinctstotal": unit.get("precinctsTotal", 0),
        "statename": unit.get("stateName"),
        "statepostal": state,
    }
    measure = row["officeid"] == "I"
    statename = STATE_NAMES.get(state, row["statename"]) if state is not None else row["statename"]
    candidates = [
        row
        | {
            "ballotorder": c.get("ballotOrder"),
            "candidateid": c.get("candidateID"),
            "delegatecount": c.get("delegateCount", 0),
            "electwon": c.get("electWon", 0),
            "first": c.get("first"),
            "incumbent": c.get("incumbent", False),
            "is_ballot_measure": measure,
            "last": c.get("last"),
            "party": c.get("party"),
            "polid": None if c.get("polID") == "0" else c.get("polID"),
            "polnum": c.get("polNum"),
            "runoff": c.get("winner", False) == "R",
            "statename": statename,
            "votecount": c.get("voteCount", 0),
            "votepct": c.get("votePct", 0.0),
            "winner": c.get("winner", False) == "X",
        }
        | ({"ap_winner": c["apWinner"] == "X"} if "apWinner" in c else {})  # the desk's: not elex's
        for c in unit.get("candidates") or []
        if isinstance(c, dict)
    ]
    return _counted(_Unit(row, candidates))


def _counted(unit: _Unit) -> _Unit:
    """The unit's votes and each candidate's share of them (none in an uncontested race), and
    each row's id."""
    if unit.row["uncontested"]:
        unit.row["votecount"] = None
    elif unit.candidates:
        unit.row["votecount"] = sum(_int(c["votecount"]) for c in unit.candidates)
    total = unit.row.get("votecount") or 0
    for c in unit.candidates:
        if not unit.row["uncontested"] and total:
            c["votepct"] = _int(c["votecount"]) / total
        c["votepct"] = round(c["votepct"], PCT_PRECISION)
        c["id"] = f"{c['raceid']}-{_unique(c)}-{c['reportingunitid']}"
    unit.row.setdefault("votecount", 0)
    return unit


def _unique(candidate: dict[str, Any]) -> str:
    """What tells a candidate apart across races: a ballot measure's candidate id, else the
    politician id, else the politician number."""
    if candidate["is_ballot_measure"]:
        return str(candidate["candidateid"])
    return f"polid-{candidate['polid']}" if candidate["polid"] else f"polnum-{candidate['polnum']}"


def _counties(state: str, units: list[_Unit]) -> list[_Unit]:
    """New England's townships rolled up into their counties, as elex adds them."""
    counties = []
    for fips, name in NEW_ENGLAND_COUNTIES[state].items():
        towns = [
            u
            for u in units
            if u.row["level"] == "township"
            and _MAIL_BALLOTS not in (u.row["reportingunitname"] or "")
            and u.row["fipscode"] == fips
        ]
        if not towns:
            continue
        county_id = f"{state}-{fips}"
        total = sum(_int(t.row["precinctstotal"]) for t in towns)
        reporting = sum(_int(t.row["precinctsreporting"]) for t in towns)
        row = towns[0].row | {
            "id": f"county-{county_id}",
            "reportingunitid": f"county-{county_id}",
            "reportingunitname": name,
            "electtotal": 0,
            "level": "county",
            "precinctsreporting": reporting,
            "precinctsreportingpct": reporting / total if total else 0.0,
            "precinctstotal": total,
            "statename": STATE_NAMES[state],
            "statepostal": state,
            "votecount": sum(_int(t.row["votecount"]) for t in towns),
        }
        rolled: dict[str, dict[str, Any]] = {}
        for town in towns:
            for c in town.candidates:
                known = rolled.get(_unique(c))
                if known is None:
                    rolled[_unique(c)] = c | {
                        "level": "county",
                        "reportingunitid": county_id,
                        "reportingunitname": name,
                        "statename": STATE_NAMES[state],
                        "electwon": 0,
                        "winner": False,
                        "runoff": False,
                    }
                    continue
                for key in ("votecount", "precinctstotal", "precinctsreporting"):
                    known[key] = _int(known[key]) + _int(c[key])
                known["precinctsreportingpct"] = (
                    known["precinctsreporting"] / known["precinctstotal"] if known["precinctstotal"] else 0.0
                )
        counties.append(_counted(_Unit(row, list(rolled.values()))))
    return counties


def _level(level: Any, state: Any) -> Any:
    if level == "subunit":
        return "township" if state in NEW_ENGLAND else "county"
    return level


def _number(value: Any) -> float:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
