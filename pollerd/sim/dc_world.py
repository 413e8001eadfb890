"""What the Democracy Club stand-in knows, step by step: the sandbox postcodes' answers, the
ballots feed, the elections list (paged in an order that moves) and the night's timeline."""

from __future__ import annotations

import copy
import random
from datetime import datetime, timedelta
from typing import Any

from pollerd.sim import dc_records as records
from pollerd.sim.dc_records import EPOCH, PICKER_SLUGS, POSTCODES

STEPS = 5
__all__ = ["PICKER_SLUGS", "POSTCODES", "STEPS", "DcWorld"]


class DcWorld:
    """What the service knows, step by step (deterministic)."""

    def __init__(self, elections: int = 230, seed: int = 5) -> None:
        self.step = 0
        self.noise = False
        self.picker_open = True  # AA13AA needs an address picker (False: one answer for all)
        self._rng = random.Random(seed)
        self.ballots = records.sandbox_ballots()
        self.updated = dict.fromkeys(self.ballots, EPOCH)
        self.stations = {
            "AA12AA": records.station("e09000023.AB", "Harbour Community Hall", -0.02, 51.46),
            PICKER_SLUGS[0]: records.station("s1", "St Mary's Church Hall"),
            PICKER_SLUGS[1]: records.station("s2", "Hill Primary School"),
            PICKER_SLUGS[2]: records.station(None),
        }
        self.elections = {e["election_id"]: e for e in map(records.election_row, range(elections))}

    def advance(self) -> None:
        """The next step of the timeline."""
        self.step += 1
        moment = EPOCH + timedelta(hours=self.step)
        if self.step == 1:  # nominations: a candidate is added
            self._touch("local.sandbox.harbour.2026-05-07", moment)["candidates"].append(
                records.candidate(103, "Dora Maar", "Conservative and Unionist Party", 52)
            )
        elif self.step == 2:  # a candidate dies: the Hill ballot is cancelled and replaced
            hill = self._touch("local.sandbox.hill.2026-05-07", moment)
            hill.update(
                cancelled=True,
                cancellation_reason="CANDIDATE_DEATH",
                replaced_by="local.sandbox.hill.2026-05-21",
            )
            replacement = records.ballot(
                "local.sandbox.hill.2026-05-21",
                "Sandbox local election ward Hill",
                "2026-05-21",
                copy.deepcopy(hill["candidates"]),
                replaces="local.sandbox.hill.2026-05-07",
            )
            self.ballots[replacement["ballot_paper_id"]] = replacement
            self.updated[replacement["ballot_paper_id"]] = moment
        elif self.step == 3:  # the council moves a polling station
            self.stations["AA12AA"] = records.station("e09000023.AB", "Harbour Sports Centre", -0.03, 51.47)
        elif self.step == 4:  # an election is withdrawn
            self.elections.pop(sorted(self.elections)[7])
        elif self.step == 5:  # a deploy: the same data, serialised differently
            self.noise = True

    def _touch(self, ballot_id: str, moment: datetime) -> dict[str, Any]:
        self.updated[ballot_id] = moment
        return self.ballots[ballot_id]

    def postcode(self, code: str) -> dict[str, Any] | None:
        """The /postcode answer for a sandbox postcode (None: unknown)."""
        answer: dict[str, Any] = {
            "address_picker": False,
            "addresses": [],
            "dates": [],
            "electoral_services": records.services("E09000023", "Lewisham Council", "England"),
            "registration": None,
            "postcode_location": {
                "type": "Feature",
                "properties": None,
                "geometry": {"type": "Point", "coordinates": [-0.02, 51.46]},
            },
        }
        special = {
            "AA12AA": self._harbour,
            "AA12AB": self._hill,
            "AA13AA": self._picker,
            "AA14AA": self._lewisham,
            "AA15AA": self._northern_ireland,
            "EH11YJ": self._edinburgh,
        }
        if code in special:
            special[code](answer)
        elif code != "AA11AA":
            return None
        return answer

    def _harbour(self, answer: dict[str, Any]) -> None:
        harbour = self.ballots["local.sandbox.harbour.2026-05-07"]
        answer["dates"] = [records.date("2026-05-07", self.stations["AA12AA"], [harbour])]

    def _hill(self, answer: dict[str, Any]) -> None:
        hill = [b for b in self.ballots.values() if b["ballot_paper_id"].startswith("local.sandbox.hill.")]
        answer["dates"] = [records.date(b["poll_open_date"], records.station(None), [b]) for b in hill]

    def _picker(self, answer: dict[str, Any]) -> None:
        if not self.picker_open:
            ballot = self.ballots["local.sandbox.picker.2026-05-07"]
            answer["dates"] = [records.date("2026-05-07", self.stations[PICKER_SLUGS[0]], [ballot])]
            return
        answer["address_picker"] = True
        answer["addresses"] = [
            {
                "address": f"{n} PICKER ROAD, SANDBOX",
                "postcode": "AA1 3AA",
                "slug": slug,
                "url": f"/api/v1/address/{slug}/",
            }
            for n, slug in enumerate(PICKER_SLUGS, start=1)
        ]

    def _lewisham(self, answer: dict[str, Any]) -> None:
        by_date: dict[str, list[dict[str, Any]]] = {}
        for ballot_id in (
            "mayor.lewisham.2026-05-07",
            "local.lewisham.blackheath.2026-05-07",
            "local.lewisham.blackheath.2026-05-14",
            "parl.lewisham-east.by.2026-06-11",
        ):
            ballot = self.ballots[ballot_id]
            by_date.setdefault(ballot["poll_open_date"], []).append(ballot)
        town_hall = records.station("e09000023.LW", "Lewisham Town Hall")
        answer["dates"] = [records.date(day, town_hall, ballots) for day, ballots in sorted(by_date.items())]

    def _northern_ireland(self, answer: dict[str, Any]) -> None:
        station = records.station(None)
        station["custom_finder"] = "http://www.eoni.org.uk/Offices/Postcode-Search-Results?postcode=AA15AA"
        answer["dates"] = [records.date("2026-05-07", station, [self.ballots["nia.lagan-valley.2026-05-07"]])]
        answer["electoral_services"] = None

    def _edinburgh(self, answer: dict[str, Any]) -> None:
        ballot = self.ballots["sp.c.edinburgh-central.2026-05-07"]
        answer["dates"] = [records.date("2026-05-07", records.station(None), [ballot])]
        answer["electoral_services"] = records.services("S12000036", "City of Edinburgh Council", "Scotland")
        answer["registration"] = records.services("S12000036", "Lothian Valuation Joint Board", "Scotland")

    def address(self, slug: str) -> dict[str, Any] | None:
        """The /address answer for a sandbox address slug (None: unknown)."""
        if slug not in PICKER_SLUGS:
            return None
        answer = self.postcode("AA11AA")
        assert answer is not None
        answer["dates"] = [
            records.date("2026-05-07", self.stations[slug], [self.ballots["local.sandbox.picker.2026-05-07"]])
        ]
        return answer

    def ballots_after(self, cursor: str | None) -> list[dict[str, Any]]:
        """The candidates site's ballots updated strictly after ``cursor``, oldest first."""
        after = datetime.fromisoformat(cursor) if cursor else None
        rows = []
        for ballot_id, moment in sorted(self.updated.items(), key=lambda item: (item[1], item[0])):
            if after is None or moment > after:
                ballot = self.ballots[ballot_id]
                rows.append(
                    {
                        "ballot_paper_id": ballot_id,
                        "last_updated": moment.isoformat(),
                        "cancelled": ballot["cancelled"],
                        "candidacies": ballot["candidates"],
                        "election": {"election_id": ballot["election_id"]},
                    }
                )
        return rows

    def page(self, offset: int, limit: int) -> tuple[int, list[dict[str, Any]]]:
        """One page of the elections list, in an order that moves between requests."""
        rows = [self.elections[k] for k in sorted(self.elections)]
        for boundary in range(limit, len(rows), limit):
            if self._rng.random() < 0.5:  # neighbours swap across the page edge: repeats and skips
                rows[boundary - 1], rows[boundary] = rows[boundary], rows[boundary - 1]
        return len(rows), rows[offset : offset + limit]
