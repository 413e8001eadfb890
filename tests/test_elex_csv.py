"""AP snapshots as elex's results CSV (issue 16, point 3): the columns, ids and values elex
documents, and the filesystem sink writing the CSV beside every AP version."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from pollerd.results.elex import COLUMNS, results_rows, to_csv
from pollerd.sim.ap import ApServer
from tests.conftest import ap_source, one_source, opened

# elex's documented example (docs/recipes.rst, ``elex results --results-level state``): Donald Trump
# in the 2016 Massachusetts Republican primary, 311,313 votes, 49.3056%, 2,172 of 2,173 precincts
TRUMP_ROW = {
    "id": "24547-polid-8639-state-1",
    "raceid": "24547",
    "racetype": "Primary",
    "racetypeid": "R",
    "ballotorder": 2,
    "candidateid": "33360",
    "delegatecount": 0,
    "electiondate": "2016-03-01",
    "first": "Donald",
    "incumbent": False,
    "initialization_data": False,
    "is_ballot_measure": False,
    "last": "Trump",
    "lastupdated": "2016-03-02T20:35:54Z",
    "level": "state",
    "national": True,
    "officeid": "P",
    "officename": "President",
    "party": "GOP",
    "polid": "8639",
    "polnum": "27533",
    "precinctsreporting": 2172,
    "precinctsreportingpct": 0.9995,
    "precinctstotal": 2173,
    "reportingunitid": "state-1",
    "runoff": False,
    "statename": "Massachusetts",
    "statepostal": "MA",
    "test": False,
    "uncontested": False,
    "votecount": 311313,
    "votepct": 0.493056,
    "winner": True,
}


def massachusetts() -> dict[str, Any]:
    """The race of elex's example, as AP's JSON has it (with a county unit and a measure beside)."""
    unit = {
        "statePostal": "MA",
        "stateName": "Massachusetts",
        "level": "state",
        "reportingunitID": "1",
        "lastUpdated": "2016-03-02T20:35:54Z",
        "precinctsReporting": 2172,
        "precinctsTotal": 2173,
        "precinctsReportingPct": 99.95,
        "candidates": [
            {
                "first": "Donald",
                "last": "Trump",
                "party": "GOP",
                "candidateID": "33360",
                "polID": "8639",
                "polNum": "27533",
                "ballotOrder": 2,
                "voteCount": 311313,
                "winner": "X",
            },
            {
                "first": "John",
                "last": "Kasich",
                "party": "GOP",
                "candidateID": "33366",
                "polID": "36679",
                "polNum": "27528",
                "ballotOrder": 13,
                "voteCount": 113783,
            },
            {
                "first": "Local",
                "last": "Hopeful",
                "party": "GOP",
                "candidateID": "33999",
                "polID": "0",
                "polNum": "27999",
                "ballotOrder": 14,
                "voteCount": 206299,
            },
        ],
    }
    county = unit | {
        "level": "subunit",
        "reportingunitID": "7001",
        "fipsCode": "25001",
        "reportingunitName": "Barnstable",
    }
    race = {
        "raceID": "24547",
        "raceType": "Primary",
        "raceTypeID": "R",
        "officeID": "P",
        "officeName": "President",
        "national": True,
        "statePostal": "MA",
        "reportingUnits": [unit, county],
    }
    measure = {
        "raceID": "7",
        "raceTypeID": "G",
        "officeID": "I",
        "officeName": "Question 1",
        "statePostal": "MA",
        "reportingUnits": [
            unit
            | {
                "candidates": [
                    {"last": "Yes", "candidateID": "555", "polNum": "1", "voteCount": 3, "winner": "X"},
                    {"last": "No", "candidateID": "556", "polNum": "2", "voteCount": 1},
                ]
            }
        ],
    }
    return {"electionDate": "2016-03-01", "races": [race, measure]}


def test_a_row_is_what_elex_documents() -> None:
    """Trump's row carries the id, fractions and flags of elex's own example."""
    rows = results_rows(massachusetts())
    assert list(rows[0]) == list(COLUMNS)
    assert {k: rows[0][k] for k in TRUMP_ROW} == TRUMP_ROW
    hopeful = rows[2]
    assert (hopeful["id"], hopeful["polid"], hopeful["winner"]) == ("24547-polnum-27999-state-1", None, False)
    county = rows[3]
    assert (county["id"], county["level"], county["fipscode"]) == (
        "24547-polid-8639-township-7001",
        "township",
        "25001",
    )
    yes = rows[6]
    assert (yes["id"], yes["is_ballot_measure"], yes["votepct"], yes["winner"]) == (
        "7-555-state-1",
        True,
        0.75,
        True,
    )
    assert len(rows) == 3 + 3 + 2


def test_the_csv_is_elex_s() -> None:
    """A header of elex's columns in its order; booleans written as Python writes them."""
    text = to_csv(results_rows(massachusetts())).decode()
    lines = text.splitlines()
    assert lines[0] == ",".join(COLUMNS)
    assert lines[1].startswith(
        "24547-polid-8639-state-1,24547,Primary,R,2,33360,,0,2016-03-01,,Donald,False,False,False,Trump,"
    )
    assert lines[1].endswith(",Massachusetts,MA,False,False,311313,0.493056,True")


async def test_the_filesystem_sink_writes_the_csv_beside_each_ap_version(
    ap: tuple[ApServer, str], tmp_path: Path, monkeypatch: Any
) -> None:
    """``format = "csv"``: every version of an AP query gets its CSV, and latest.csv is the
    newest snapshot's; the raw delta resource gets none."""
    replay, base = ap
    queries = [{"name": "all", "level": "ru"}]
    source = ap_source(base, ["out"], raw_deltas=True, queries=queries)
    config = one_source(
        tmp_path,
        source,
        [{"name": "out", "kind": "filesystem", "root": str(tmp_path / "out"), "format": "csv"}],
    )
    async with opened(config) as daemon:
        for _ in range(4):
            assert await daemon.run_once()
            replay.election.advance(10)
    folder = tmp_path / "out" / "ap" / "all"
    versions = sorted(p for p in folder.glob("2*.json") if not p.name.endswith(".event.json"))
    assert len(versions) == 4
    for version in versions:
        table = list(csv.DictReader(io.StringIO(version.with_suffix(".csv").read_text())))
        snapshot = json.loads(version.read_bytes())
        assert len(table) == sum(len(u["candidates"]) for r in snapshot["races"] for u in r["reportingUnits"])
    assert (folder / "latest.csv").read_bytes() == to_csv(
        results_rows(json.loads((folder / "latest.json").read_bytes()))
    )
    assert not list((tmp_path / "out" / "ap" / "all.delta").glob("*.csv"))
