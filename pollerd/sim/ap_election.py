"""The AP replay's election night: races in three states and nationally, counted step by step,
each race stamped with the step it last changed at (so ``minDateTime`` can select deltas)."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

ELECTION_DATE = "2026-11-03"
POLLS_CLOSE = datetime(2026, 11, 4, 0, 0, tzinfo=UTC)
STEP = timedelta(seconds=10)
STATES = {"CO": ("Colorado", 5), "WV": ("West Virginia", 4), "PA": ("Pennsylvania", 6)}
# More states for a national-sized night: (postal code, counties).
NATIONAL = (
    ("AL", 8),
    ("AZ", 6),
    ("CA", 12),
    ("FL", 10),
    ("GA", 9),
    ("IL", 8),
    ("IN", 7),
    ("MI", 8),
    ("MN", 7),
    ("MO", 7),
    ("NC", 9),
    ("NJ", 6),
    ("NV", 4),
    ("NY", 10),
    ("OH", 9),
    ("OR", 5),
    ("SC", 6),
    ("TX", 14),
    ("VA", 8),
    ("WA", 6),
    ("WI", 7),
)
OFFICES = (
    ("S", "U.S. Senate", None),
    ("G", "Governor", None),
    ("H", "U.S. House", 1),
    ("H", "U.S. House", 2),
)
CANDIDATES = (("Dem", "Rivera"), ("GOP", "Walsh"), ("Lib", "Okafor"))
RETRACTED_RACE = "PA:1009:G"  # the Pennsylvania Senate race: called, retracted, called again
LEAD_RACE = "CO:1002:G"  # Colorado's governor: the early counties favour Walsh, the late ones Rivera
CORRECTED_RACE = "WV:1005:G"  # West Virginia's Senate race: AP corrects its count downward once
CLOSE_FROM, LEAD_CALLED = 30, 90  # LEAD_RACE: "Too Close to Call" from this eevp, called at that


class ApElection:
    """The races, their reporting units and votes at every step of the night (deterministic)."""

    def __init__(
        self,
        steps: int = 180,
        seed: int = 11,
        national: bool = False,
        update_probability: float = 0.2,
        county_factor: int = 1,
        race_factor: int = 1,
    ) -> None:
        """``national``: 24 states instead of 3; ``update_probability``: the chance that a race
        gets new votes in a step (10 s); ``county_factor``: that many times the counties, and
        ``race_factor`` that many times each state's races (a benchmark's way to a real night's
        size)."""
        self.steps = steps
        self.states = dict(STATES) | (
            {code: (code, counties) for code, counties in NATIONAL} if national else {}
        )
        self._update_probability = update_probability
        self.step = 0
        self._rng = random.Random(seed)
        self.races: dict[str, dict[str, Any]] = {}
        self.updated: dict[str, int] = {}  # race key -> step of its last change
        self.retracted: set[str] = set()  # races whose call was taken back
        self.corrected: set[str] = set()  # races whose count went down once
        race_number = 1000
        for state, (state_name, counties) in self.states.items():
            for office_id, office_name, seat in OFFICES * race_factor:
                race_number += 1
                race = self._race(
                    state, state_name, counties * county_factor, race_number, office_id, office_name, seat
                )
                key = f"{state}:{race['raceID']}:G"
                self.races[key] = race
                self.updated[key] = 0

    def timestamp(self, step: int | None = None) -> str:
        """The AP-style time of a step."""
        moment = POLLS_CLOSE + STEP * (self.step if step is None else step)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"

    def step_of(self, timestamp: str) -> int | None:
        """The step a timestamp names (None if it names none)."""
        try:
            moment = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
        except ValueError:
            return None
        return int((moment - POLLS_CLOSE) / STEP)

    def advance(self, steps: int = 1) -> None:
        """Count more votes (and call races) for ``steps`` steps."""
        for _ in range(steps):
            if self.step >= self.steps:
                return
            self.step += 1
            for key, race in self.races.items():
                if self._rng.random() < self._update_probability:
                    self._count(race, key)
                    self.updated[key] = self.step

    def call(self, key: str, candidate: str | None = None) -> None:
        """AP calls a race at the next step, for its leader or for ``candidate`` (an AP
        candidate ID), with no new votes: ``lastUpdated`` stays where it was."""
        self.step += 1
        total = self.races[key]["reportingUnits"][0]
        leader = max(total["candidates"], key=lambda c: c["voteCount"])
        winner = next((c for c in total["candidates"] if c["candidateID"] == candidate), leader)
        for other in total["candidates"]:
            other.pop("winner", None)
            other.pop("winnerDateTime", None)
        winner["winner"] = "X"
        winner["winnerDateTime"] = self.timestamp()
        self.races[key]["raceCallStatus"] = "Called"
        self.updated[key] = self.step

    def retract(self, key: str) -> None:
        """AP takes a call back at the next step with no new votes (as it did with races called
        too early): the winner flags go, ``lastUpdated`` stays where it was."""
        self.step += 1
        for candidate in self.races[key]["reportingUnits"][0]["candidates"]:
            candidate.pop("winner", None)
            candidate.pop("winnerDateTime", None)
        self.races[key]["raceCallStatus"] = "Too Early to Call"
        self.updated[key] = self.step

    def _race(
        self,
        state: str,
        state_name: str,
        counties: int,
        number: int,
        office_id: str,
        office_name: str,
        seat: int | None,
    ) -> dict[str, Any]:
        units = [self._unit(state, state_name, "state", state, counties * 40, number)]
        units += [
            self._unit(state, state_name, "subunit", f"{number}{c:02d}", 40, number)
            for c in range(1, counties + 1)
        ]
        race: dict[str, Any] = {
            "test": False,
            "resultsType": "l",
            "raceID": str(number),
            "raceType": "General",
            "raceTypeID": "G",
            "officeID": office_id,
            "officeName": office_name,
            "statePostal": state,
            "eevp": 0,
            "tabulationStatus": "Active Tabulation",
            "raceCallStatus": "Too Early to Call",
            "reportingUnits": units,
        }
        if seat is not None:
            race["seatNum"], race["seatName"] = str(seat), f"District {seat}"
        return race

    def _unit(
        self, state: str, state_name: str, level: str, unit_id: str, precincts: int, race_number: int
    ) -> dict[str, Any]:
        return {
            "statePostal": state,
            "stateName": state_name,
            "level": level,
            "reportingunitID": unit_id,
            "lastUpdated": self.timestamp(0),
            "precinctsReporting": 0,
            "precinctsTotal": precincts,
            "precinctsReportingPct": 0.0,
            "candidates": [
                {
                    "first": f"Alex{n}",
                    "last": last,
                    "party": party,
                    "candidateID": f"{race_number}{n}",
                    "polID": f"{n}{len(last)}{n}",
                    "ballotOrder": n,
                    "polNum": str(n),
                    "voteCount": 0,
                }
                for n, (party, last) in enumerate(CANDIDATES, start=1)
            ],
        }

    def _count(self, race: dict[str, Any], key: str) -> None:
        """Count more votes in two counties; call the race at 60%. The Pennsylvania Senate race
        is called at 60%, retracted at 65% and called again at 95%, as AP did with races called
        too early; Colorado's governor changes leader and is too close to call for a while; West
        Virginia's Senate count is corrected downward once, past 50%."""
        units = race["reportingUnits"]
        for unit in self._rng.sample(units[1:], k=min(2, len(units) - 1)):
            if unit["precinctsReporting"] >= unit["precinctsTotal"]:
                continue
            unit["precinctsReporting"] = min(unit["precinctsTotal"], unit["precinctsReporting"] + 8)
            unit["precinctsReportingPct"] = round(
                100 * unit["precinctsReporting"] / unit["precinctsTotal"], 1
            )
            unit["lastUpdated"] = self.timestamp()
            for candidate in unit["candidates"]:
                votes = self._rng.randint(50, 900)
                candidate["voteCount"] += votes // self._divisor(key, race, candidate["ballotOrder"])
        if key == CORRECTED_RACE and race["eevp"] >= 50 and key not in self.corrected:
            self.corrected.add(key)
            for unit in units[1:]:  # a batch counted twice, taken out again
                for candidate in unit["candidates"]:
                    candidate["voteCount"] = candidate["voteCount"] * 4 // 5
        total = units[0]
        total["precinctsReporting"] = sum(u["precinctsReporting"] for u in units[1:])
        total["precinctsReportingPct"] = round(100 * total["precinctsReporting"] / total["precinctsTotal"], 1)
        total["lastUpdated"] = self.timestamp()
        for i, candidate in enumerate(total["candidates"]):
            candidate["voteCount"] = sum(u["candidates"][i]["voteCount"] for u in units[1:])
        race["eevp"] = round(total["precinctsReportingPct"])
        called = race["raceCallStatus"] == "Called"
        if key == RETRACTED_RACE and called and race["eevp"] >= 65 and not self.retracted:
            self.retracted.add(RETRACTED_RACE)
            race["raceCallStatus"] = "Too Early to Call"
            for candidate in total["candidates"]:
                candidate.pop("winner", None)
                candidate.pop("winnerDateTime", None)
        elif not called and race["eevp"] >= self._call_at(key):
            race["raceCallStatus"] = "Called"
            leader = max(total["candidates"], key=lambda c: c["voteCount"])
            leader["winner"] = "X"
            leader["winnerDateTime"] = self.timestamp()
        elif not called and key == LEAD_RACE and race["eevp"] >= CLOSE_FROM:
            race["raceCallStatus"] = "Too Close to Call"

    def _divisor(self, key: str, race: dict[str, Any], ballot_order: int) -> int:
        """What a candidate's share of new votes is divided by: the ballot order, except in
        LEAD_RACE, where Walsh leads the early count and Rivera catches up late."""
        if key != LEAD_RACE:
            return ballot_order
        if race["eevp"] < CLOSE_FROM:
            return {1: 3, 2: 1}.get(ballot_order, 4)
        return {1: 1, 2: 4}.get(ballot_order, 4)

    def _call_at(self, key: str) -> int:
        """The eevp at which AP calls the race."""
        if key == RETRACTED_RACE and self.retracted:
            return 95
        return LEAD_CALLED if key == LEAD_RACE else 60

    def select(self, params: dict[str, str], since: int | None, until: int) -> list[dict[str, Any]]:
        """Races matching the filters (changed in (since, until] when ``since`` is given)."""
        states = values(params.get("statePostal"))
        offices = values(params.get("officeID"))
        race_ids = values(params.get("raceID"))
        level = params.get("level", "state").lower()
        test = params.get("resultsType") == "t"
        chosen = []
        for key, race in sorted(self.races.items()):
            if states and race["statePostal"] not in states:
                continue
            if (offices and race["officeID"] not in offices) or (race_ids and race["raceID"] not in race_ids):
                continue
            if since is not None and not since < self.updated[key] <= until:
                continue
            view = json.loads(json.dumps(race))
            if level != "ru":
                view["reportingUnits"] = view["reportingUnits"][:1]
            view["test"] = test
            view["resultsType"] = "t" if test else "l"
            chosen.append(view)
        return chosen


def values(text: str | None) -> set[str]:
    """The values of a comma-separated filter."""
    return {v.strip() for v in (text or "").split(",") if v.strip()}
