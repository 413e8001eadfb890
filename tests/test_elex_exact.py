"""pollerd's AP tables and CSV against elex 2.4.4 itself: ``elex results``, ``elex races`` and
``elex reporting-units --data-file`` on the simulator's national night and on hand-made edge
cases (a race's lastUpdated, a state unit without an id, an uncontested race, no precinct share,
New England's townships rolled up into counties, a ballot measure, electoral votes, a runoff),
compared byte for byte; the postgres sink's tables hold the same values, and tables an older
pollerd made gain the new columns; the README's column lists are the code's.

elex runs from a virtualenv of its own (``.ci/run`` makes it: its pinned pymongo 3.3 does not
import on Python 3.11, so a newer one goes beside it): ``POLLERD_ELEX`` names its executable."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from pollerd.config import PostgresSinkConfig
from pollerd.core.model import Event, Validators
from pollerd.election.ap import race_key
from pollerd.results.elex import COLUMNS, RACE_COLUMNS, REPORTING_UNIT_COLUMNS, elex_tables, to_csv
from pollerd.sim.ap_election import ELECTION_DATE, ApElection
from pollerd.sinks.pg_tables import RACES, REPORTING_UNITS, RESULTS
from pollerd.sinks.postgres import PostgresSink
from pollerd.versions.payload import Payload
from tests.conftest import require

README = Path(__file__).resolve().parents[1] / "README.md"
TABLES = {"results": COLUMNS, "races": RACE_COLUMNS, "reporting-units": REPORTING_UNIT_COLUMNS}


def elex_executable() -> str:
    """elex's command (``POLLERD_ELEX``, else on the PATH); skipped where it is not installed
    (a failure in CI)."""
    found = os.environ.get("POLLERD_ELEX") or shutil.which("elex")
    require(found is not None and Path(found).exists(), "elex 2.4.4 (POLLERD_ELEX)")
    assert found is not None
    return found


def elex(command: str, document: dict[str, Any], tmp_path: Path) -> str:
    """What ``elex <command> --data-file`` prints for the document."""
    data = tmp_path / "data.json"
    data.write_text(json.dumps(document))
    done = subprocess.run(
        [elex_executable(), command, "--data-file", str(data)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return done.stdout


def ours(command: str, document: dict[str, Any]) -> str:
    """What pollerd writes for the same table."""
    tables = elex_tables(document)
    rows = {"results": tables.results, "races": tables.races, "reporting-units": tables.reporting_units}
    return to_csv(rows[command], TABLES[command]).decode()


def national_night() -> dict[str, Any]:
    """The simulator's national night at reporting-unit level, two thirds through."""
    election = ApElection(national=True)
    election.advance(120)
    return {"electionDate": ELECTION_DATE, "races": election.select({"level": "ru"}, None, election.step)}


def candidate(n: int, votes: int | None, **keys: Any) -> dict[str, Any]:
    c: dict[str, Any] = {
        "first": f"First{n}",
        "last": f"Last{n}",
        "party": "Dem" if n == 1 else "GOP",
        "candidateID": f"10{n}",
        "polID": f"{300 + n}",
        "ballotOrder": n,
        "polNum": f"{500 + n}",
    }
    if votes is not None:
        c["voteCount"] = votes
    return c | keys


def unit(level: str, state: str, name: str | None, **keys: Any) -> dict[str, Any]:
    u: dict[str, Any] = {
        "statePostal": state,
        "stateName": keys.pop("stateName", state.lower() + "-by-ap"),
        "level": level,
    }
    if name is not None:
        u["reportingunitName"] = name
    return u | keys


def edge_document() -> dict[str, Any]:
    nh_towns = [
        unit(
            "subunit",
            "NH",
            "Concord",
            reportingunitID="301",
            fipsCode="33013",
            precinctsReporting=2,
            precinctsTotal=3,
            precinctsReportingPct=66.7,
            lastUpdated="2026-11-04T03:00:00Z",
            candidates=[candidate(1, 900, winner="X"), candidate(2, 700)],
        ),
        unit(
            "subunit",
            "NH",
            "Bow",
            reportingunitID="302",
            fipsCode="33013",
            precinctsReporting=1,
            precinctsTotal=1,
            precinctsReportingPct=100.0,
            lastUpdated="2026-11-04T03:10:00Z",
            candidates=[candidate(1, 400), candidate(2, 450)],
        ),
        unit(
            "subunit",
            "NH",
            "Mail Ballots C.D. 2",
            reportingunitID="399",
            fipsCode="33013",
            precinctsReporting=0,
            precinctsTotal=1,
            candidates=[candidate(1, 50), candidate(2, 60)],
        ),
        unit(
            "subunit",
            "NH",
            "Keene",
            reportingunitID="303",
            fipsCode="33005",
            precinctsReporting=0,
            precinctsTotal=4,
            candidates=[candidate(1, 0), candidate(2, 0)],
        ),
    ]
    nh_state = unit(
        "state",
        "NH",
        None,
        precinctsReporting=3,
        precinctsTotal=9,
        precinctsReportingPct=33.3,
        electTotal=4,
        lastUpdated="2026-11-04T03:10:00Z",
        candidates=[candidate(1, 1350, winner="X", electWon=4), candidate(2, 1210)],
    )
    return {
        "electionDate": "2026-11-03",
        "races": [
            {
                "raceID": "1",
                "raceType": "General",
                "raceTypeID": "G",
                "officeID": "P",
                "officeName": "President",
                "statePostal": "NH",
                "national": True,
                "lastUpdated": "2026-11-04T04:00:00Z",
                "reportingUnits": [nh_state, *nh_towns],
            },
            {
                "raceID": "2",
                "raceType": "General",
                "raceTypeID": "G",
                "officeID": "H",
                "officeName": "U.S. House",
                "seatName": "District 3",
                "seatNum": "3",
                "statePostal": "PA",
                "uncontested": True,
                "reportingUnits": [
                    unit(
                        "state",
                        "PA",
                        None,
                        stateName="Pennsylvania",
                        candidates=[candidate(1, None, incumbent=True, polID="0")],
                    )
                ],
            },
            {
                "raceID": "3",
                "raceType": "General",
                "raceTypeID": "G",
                "officeID": "I",
                "officeName": "Ballot Issue",
                "seatName": "Measure 1",
                "description": "Minimum wage",
                "statePostal": "MH",
                "reportingUnits": [
                    unit(
                        "state",
                        "MH",
                        None,
                        stateName="Marshall Islands",
                        precinctsReporting=1,
                        precinctsTotal=2,
                        candidates=[
                            candidate(1, 120, last="Yes", polID="0"),
                            candidate(2, 80, last="No", polID="0"),
                        ],
                    ),
                    unit(
                        "subunit",
                        "MH",
                        "Majuro",
                        reportingunitID="7",
                        candidates=[
                            candidate(1, 0, last="Yes", polID="0"),
                            candidate(2, 0, last="No", polID="0"),
                        ],
                    ),
                ],
            },
            {
                "raceID": "4",
                "raceType": "Runoff",
                "raceTypeID": "R",
                "officeID": "S",
                "officeName": "U.S. Senate",
                "statePostal": "GA",
                "party": "Dem",
                "reportingUnits": [
                    unit(
                        "state",
                        "GA",
                        None,
                        reportingunitID="1",
                        precinctsReportingPct=57.1,
                        candidates=[
                            candidate(1, 10, winner="R", votePct=0.5),
                            candidate(2, 10, winner="R", delegateCount=3),
                        ],
                    ),
                    unit("subunit", "GA", "Fulton", fipsCode="13121", candidates=[]),
                ],
            },
            {
                "raceID": "5",
                "raceType": "General",
                "raceTypeID": "G",
                "officeID": "G",
                "officeName": "Governor",
                "statePostal": "VT",
                "reportingUnits": [],
            },
        ],
    }


@pytest.mark.parametrize("command", list(TABLES))
@pytest.mark.parametrize("document", [national_night, edge_document], ids=["night", "edge-cases"])
def test_the_tables_are_elex_s_byte_for_byte(command: str, document: Any, tmp_path: Path) -> None:
    expected = elex(command, document(), tmp_path)
    assert expected.splitlines()[0] == ",".join(TABLES[command])
    assert ours(command, document()) == expected


def test_the_edge_cases_are_what_the_issue_found(tmp_path: Path) -> None:
    """The divergences found from elex's source, each present in the edge document (so the
    comparison above covers them)."""
    rows = list(csv.DictReader(io.StringIO(ours("results", edge_document()))))
    by_id = {row["id"]: row for row in rows}
    assert by_id["1-polid-301-state-NH-1"]["lastupdated"] == "2026-11-04T04:00:00Z"  # the race's
    assert (
        by_id["1-polid-301-state-NH-1"]["electwon"] == "4"
        and by_id["1-polid-301-state-NH-1"]["electtotal"] == "4"
    )
    assert by_id["2-polnum-501-state-PA-1"]["votepct"] == "0.0"  # uncontested
    assert by_id["1-polid-301-NH-33013"]["level"] == "county"  # the towns rolled up
    assert by_id["1-polid-301-NH-33013"]["votecount"] == "1300"  # Concord and Bow, no mail ballots
    assert by_id["3-101-state-MH-1"]["statename"] == "Northern Mariana Islands"  # elex's table
    units = list(csv.DictReader(io.StringIO(ours("reporting-units", edge_document()))))
    assert {u["id"]: u["statename"] for u in units}["state-MH-1"] == "Marshall Islands"  # AP's
    assert {u["id"]: u["precinctsreportingpct"] for u in units}["state-1"] == "0.5710000000000001"


async def test_the_postgres_tables_hold_elex_s_values_and_old_tables_gain_the_columns(
    tmp_path: Path, postgres_url: str
) -> None:
    """A table made by an older pollerd (schema 2: without electtotal, electwon and
    is_ballot_measure) is altered when the sink starts; the next version writes the rows, which
    then hold elex's values in every column."""
    document = edge_document()
    payload = tmp_path / "snapshot.json"
    payload.write_text(json.dumps(document))
    sink = PostgresSink(
        PostgresSinkConfig.model_validate({"name": "db", "kind": "postgres", "url": postgres_url}), "t"
    )
    first, second = version(1, payload), version(2, payload)
    await sink.deliver(first, Payload(payload))
    await sink.close()
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as db:
        for table, column in (
            (RESULTS, "electtotal"),
            (RESULTS, "electwon"),
            (RACES, "is_ballot_measure"),
            (REPORTING_UNITS, "electtotal"),
        ):
            await db.execute(
                sql.SQL("ALTER TABLE {} DROP COLUMN {}").format(
                    sql.Identifier(table.name), sql.Identifier(column)
                )
            )
        await db.execute("DELETE FROM pollerd_schema")
        await db.execute("INSERT INTO pollerd_schema VALUES (2)")
    again = PostgresSink(
        PostgresSinkConfig.model_validate({"name": "db", "kind": "postgres", "url": postgres_url}), "t"
    )
    await again.deliver(second, Payload(payload))
    await again.close()
    async with await psycopg.AsyncConnection.connect(postgres_url) as db:
        version_now = (await (await db.execute("SELECT max(version) FROM pollerd_schema")).fetchone() or [0])[
            0
        ]
        stored = {}
        for name, table in (("results", RESULTS), ("races", RACES), ("reporting-units", REPORTING_UNITS)):
            cursor = await db.execute(
                sql.SQL("SELECT {} FROM {}").format(
                    sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(c)) for c in TABLES[name]),
                    sql.Identifier(table.name),
                )
            )
            stored[name] = await cursor.fetchall()
    assert version_now == 3
    for name in TABLES:
        expected = list(csv.reader(io.StringIO(elex(name, document, tmp_path))))[1:]
        keyed = [row for row in expected if row[0]]  # a row without an id cannot be stored
        assert len(expected) - len(keyed) == (name == "reporting-units")  # Fulton: AP gave no id
        assert sorted(_as_elex(row, TABLES[name]) for row in stored[name]) == sorted(keyed), name


def _as_elex(row: tuple[Any, ...], columns: tuple[str, ...]) -> list[str]:
    """A row read back as text, written as elex writes it (booleans True/False, the date and
    times as AP gave them, empty for NULL)."""
    written = []
    for column, value in zip(columns, row, strict=True):
        if value is None:
            written.append("")
        elif value in ("true", "false"):
            written.append(value.title())
        elif column == "lastupdated":
            written.append(value.replace(" ", "T").replace("+00", "Z"))
        elif column in ("votepct", "precinctsreportingpct") and "." not in value and "e" not in value:
            written.append(f"{float(value)}")
        else:
            written.append(value)
    return written


def version(sequence: int, payload: Path) -> Event:
    """A version of an AP query's snapshot, every race of it changed."""
    sha = f"{sequence:064x}"
    races = [race_key(race) for race in json.loads(payload.read_bytes())["races"]]
    return Event(
        Event.make_id("ap", "all", sequence, sha),
        "ap",
        "all",
        "http://127.0.0.1/ap",
        sequence,
        sha,
        None,
        payload.stat().st_size,
        "application/json",
        Validators(),
        datetime(2026, 11, 4, tzinfo=UTC),
        "json",
        details={"changed_races": races},
    )


def test_the_readme_lists_the_code_s_columns() -> None:
    """Every column list the README gives is the code's, in the code's order."""
    text = " ".join(README.read_text().split())
    for columns in (COLUMNS, RACE_COLUMNS, REPORTING_UNIT_COLUMNS):
        assert f"`{', '.join(columns)}`" in text
    assert not re.search(r"38 columns|older elex docstring", text)
