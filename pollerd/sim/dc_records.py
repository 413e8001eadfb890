"""The records of the Democracy Club stand-in, in the documented shapes: councils, candidates,
ballots, polling stations, election dates, and the synthetic elections list."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

POSTCODES = ("AA11AA", "AA12AA", "AA12AB", "AA13AA", "AA14AA", "AA15AA", "EH11YJ")
PICKER_SLUGS = ("10035187881", "10035187882", "10035187883")
EPOCH = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)


def services(council: str, name: str, nation: str) -> dict[str, Any]:
    return {
        "council_id": council,
        "name": name,
        "nation": nation,
        "address": f"Electoral Registration Officer\n{name}",
        "postcode": "AA1 9ZZ",
        "email": f"elections@{name.split()[0].lower()}.example",
        "phone": "01632 960000",
        "website": f"https://{name.split()[0].lower()}.example/",
    }


def candidate(ynr_id: int, name: str, party: str, party_id: int) -> dict[str, Any]:
    return {
        "list_position": None,
        "party": {"party_id": f"party:{party_id}", "party_name": party},
        "person": {
            "ynr_id": ynr_id,
            "name": name,
            "absolute_url": f"https://whocanivotefor.co.uk/person/{ynr_id}/",
            "email": None,
            "photo_url": None,
        },
    }


def ballot(
    ballot_id: str, title: str, date: str, candidates: list[dict[str, Any]], **flags: Any
) -> dict[str, Any]:
    election_id = ballot_id.rsplit(".", 2)[0] + "." + date
    return {
        "ballot_paper_id": ballot_id,
        "ballot_title": title,
        "ballot_url": f"https://developers.democracyclub.org.uk/api/v1/elections/{ballot_id}/",
        "poll_open_date": date,
        "elected_role": "Local Councillor",
        "metadata": None,
        "cancelled": False,
        "cancellation_reason": None,
        "replaced_by": None,
        "replaces": None,
        "election_id": election_id,
        "election_name": title.split(" ward")[0],
        "post_name": title.rsplit(" ", 1)[-1],
        "candidates_verified": False,
        "voting_system": {"slug": "FPTP", "name": "First-past-the-post", "uses_party_lists": False},
        "seats_contested": 1,
        "candidates": candidates,
        "wcivf_url": f"https://whocanivotefor.co.uk/elections/{ballot_id}/",
        **flags,
    }


def station(
    station_id: str | None, address: str = "", lon: float = -0.01, lat: float = 51.5
) -> dict[str, Any]:
    station = None
    if station_id is not None:
        station = {
            "id": station_id,
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [lon, lat]},
            "properties": {"postcode": "", "address": address},
        }
    return {
        "polling_station_known": station is not None,
        "custom_finder": None,
        "report_problem_url": None,
        "station": station,
    }


def date(
    date: str,
    station: dict[str, Any],
    ballots: list[dict[str, Any]],
    notifications: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "date": date,
        "polling_station": station,
        "advance_voting_station": None,
        "notifications": notifications or [],
        "ballots": ballots,
    }


def sandbox_ballots() -> dict[str, dict[str, Any]]:
    """The ballots of the sandbox postcodes, as the timeline starts."""
    harbour = [
        candidate(101, "Ada Lovelace", "Green Party", 63),
        candidate(102, "Brian Cox", "Labour Party", 53),
    ]
    return {
        "local.sandbox.harbour.2026-05-07": ballot(
            "local.sandbox.harbour.2026-05-07",
            "Sandbox local election ward Harbour",
            "2026-05-07",
            harbour,
        ),
        "local.sandbox.hill.2026-05-07": ballot(
            "local.sandbox.hill.2026-05-07",
            "Sandbox local election ward Hill",
            "2026-05-07",
            [candidate(201, "Chen Wu", "Liberal Democrats", 90)],
        ),
        "local.sandbox.picker.2026-05-07": ballot(
            "local.sandbox.picker.2026-05-07",
            "Sandbox local election ward Picker",
            "2026-05-07",
            [candidate(301, "Emmy Noether", "Independent", 0)],
        ),
        "mayor.lewisham.2026-05-07": ballot(
            "mayor.lewisham.2026-05-07", "Mayor of Lewisham ward Mayor", "2026-05-07", []
        ),
        "local.lewisham.blackheath.2026-05-07": ballot(
            "local.lewisham.blackheath.2026-05-07",
            "Lewisham local election ward Blackheath",
            "2026-05-07",
            [],
            cancelled=True,
            cancellation_reason="CANDIDATE_DEATH",
            replaced_by="local.lewisham.blackheath.2026-05-14",
        ),
        "local.lewisham.blackheath.2026-05-14": ballot(
            "local.lewisham.blackheath.2026-05-14",
            "Lewisham local election ward Blackheath",
            "2026-05-14",
            [],
            replaces="local.lewisham.blackheath.2026-05-07",
        ),
        "parl.lewisham-east.by.2026-06-11": ballot(
            "parl.lewisham-east.by.2026-06-11", "Lewisham East by-election ward East", "2026-06-11", []
        ),
        "nia.lagan-valley.2026-05-07": ballot(
            "nia.lagan-valley.2026-05-07", "Northern Ireland Assembly ward Lagan", "2026-05-07", []
        ),
        "sp.c.edinburgh-central.2026-05-07": ballot(
            "sp.c.edinburgh-central.2026-05-07", "Scottish Parliament ward Central", "2026-05-07", []
        ),
    }


def election_row(n: int) -> dict[str, Any]:
    """The ``n``-th election of the synthetic list (councils of ten wards)."""
    council = f"council{n // 10:02d}"
    election_id = f"local.{council}.ward{n % 10}.2026-05-07"
    return {
        "election_id": election_id,
        "election_title": f"Council {n // 10} ward {n % 10}",
        "poll_open_date": "2026-05-07",
        "election_type": {"name": "Local elections", "election_type": "local"},
        "election_subtype": None,
        "organisation": {
            "official_identifier": council,
            "organisation_type": "local-authority",
            "slug": council,
            "territory_code": "ENG",
            "election_name": f"Council {n // 10} local election",
        },
        "group": f"local.{council}.2026-05-07",
        "identifier_type": "ballot",
        "children": [],
        "elected_role": "Local Councillor",
        "seats_contested": 1 + n % 3,
        "division": {
            "name": f"Ward {n % 10}",
            "slug": f"ward{n % 10}",
            "official_identifier": f"gss:E05{n:06d}",
        },
        "voting_system": {
            "slug": "FPTP",
            "name": "First-past-the-post",
            "uses_party_lists": False,
        },
        "current": True,
        "metadata": None,
        "cancelled": False,
        "replaces": None,
        "replaced_by": None,
    }
