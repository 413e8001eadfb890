"""A Democracy Club API stand-in: the developer API (keyed and sandbox) and the candidates site's
ballots feed, with the service's habits.

- ``/api/v1/postcode/{pc}/``, ``/api/v1/address/{slug}/`` (``auth_token`` checked) and the keyless
  ``/api/v1/sandbox/...`` twins serve the sandbox postcodes of the documentation (AA11AA ... EH11YJ)
  with synthetic bodies in the documented shapes. No ETag, no Last-Modified.
- ``/api/v1/elections/`` is paged by limit/offset in an order that is not stable across requests;
  its ``next`` links drop ``auth_token`` and every filter but the few the service keeps.
- ``/api/next/ballots/?last_updated=`` is the candidates site's feed (strictly after, in order);
  that site answers 418 to the User-Agents of HTTP libraries and 429 (DRF) to anonymous callers.
- A firewall answers 403 beyond ``firewall_limit`` requests in 5 minutes.

``advance`` plays the timeline: candidates added, a ballot cancelled and replaced, a polling
station moved, an election withdrawn, and a step that only re-serialises (same data, new bytes).
"""

from __future__ import annotations

import asyncio
import copy
import json
import random
import time
from collections import deque
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from pollerd.core.waiting import wait_set
from pollerd.sim.host import SimHost

POSTCODES = ("AA11AA", "AA12AA", "AA12AB", "AA13AA", "AA14AA", "AA15AA", "EH11YJ")
PICKER_SLUGS = ("10035187881", "10035187882", "10035187883")
LIBRARY_AGENTS = (
    "python-requests",
    "aiohttp",
    "python-urllib",
    "python-httpx",
    "go-http-client",
    "curl/",
    "wget/",
    "okhttp",
    "java/",
)
NEXT_KEEPS = ("limit", "offset", "current", "future", "coords", "metadata", "identifier_type")
ANONYMOUS_PER_MINUTE = 10
STEPS = 5
_EPOCH = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)


def _services(council: str, name: str, nation: str) -> dict[str, Any]:
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


def _candidate(ynr_id: int, name: str, party: str, party_id: int) -> dict[str, Any]:
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


def _ballot(
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


def _station(
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


def _date(
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


class DcWorld:
    """What the service knows, step by step (deterministic)."""

    def __init__(self, elections: int = 230, seed: int = 5) -> None:
        self.step = 0
        self.noise = False
        self.picker_open = True  # AA13AA needs an address picker (False: one answer for all)
        self._rng = random.Random(seed)
        harbour = [
            _candidate(101, "Ada Lovelace", "Green Party", 63),
            _candidate(102, "Brian Cox", "Labour Party", 53),
        ]
        self.ballots: dict[str, dict[str, Any]] = {
            "local.sandbox.harbour.2026-05-07": _ballot(
                "local.sandbox.harbour.2026-05-07",
                "Sandbox local election ward Harbour",
                "2026-05-07",
                harbour,
            ),
            "local.sandbox.hill.2026-05-07": _ballot(
                "local.sandbox.hill.2026-05-07",
                "Sandbox local election ward Hill",
                "2026-05-07",
                [_candidate(201, "Chen Wu", "Liberal Democrats", 90)],
            ),
            "local.sandbox.picker.2026-05-07": _ballot(
                "local.sandbox.picker.2026-05-07",
                "Sandbox local election ward Picker",
                "2026-05-07",
                [_candidate(301, "Emmy Noether", "Independent", 0)],
            ),
            "mayor.lewisham.2026-05-07": _ballot(
                "mayor.lewisham.2026-05-07", "Mayor of Lewisham ward Mayor", "2026-05-07", []
            ),
            "local.lewisham.blackheath.2026-05-07": _ballot(
                "local.lewisham.blackheath.2026-05-07",
                "Lewisham local election ward Blackheath",
                "2026-05-07",
                [],
                cancelled=True,
                cancellation_reason="CANDIDATE_DEATH",
                replaced_by="local.lewisham.blackheath.2026-05-14",
            ),
            "local.lewisham.blackheath.2026-05-14": _ballot(
                "local.lewisham.blackheath.2026-05-14",
                "Lewisham local election ward Blackheath",
                "2026-05-14",
                [],
                replaces="local.lewisham.blackheath.2026-05-07",
            ),
            "parl.lewisham-east.by.2026-06-11": _ballot(
                "parl.lewisham-east.by.2026-06-11", "Lewisham East by-election ward East", "2026-06-11", []
            ),
            "nia.lagan-valley.2026-05-07": _ballot(
                "nia.lagan-valley.2026-05-07", "Northern Ireland Assembly ward Lagan", "2026-05-07", []
            ),
            "sp.c.edinburgh-central.2026-05-07": _ballot(
                "sp.c.edinburgh-central.2026-05-07", "Scottish Parliament ward Central", "2026-05-07", []
            ),
        }
        self.updated = dict.fromkeys(self.ballots, _EPOCH)
        self.stations = {
            "AA12AA": _station("e09000023.AB", "Harbour Community Hall", -0.02, 51.46),
            PICKER_SLUGS[0]: _station("s1", "St Mary's Church Hall"),
            PICKER_SLUGS[1]: _station("s2", "Hill Primary School"),
            PICKER_SLUGS[2]: _station(None),
        }
        self.elections = {e["election_id"]: e for e in self._elections(elections)}

    def advance(self) -> None:
        """The next step of the timeline."""
        self.step += 1
        moment = _EPOCH + timedelta(hours=self.step)
        if self.step == 1:  # nominations: a candidate is added
            self._touch("local.sandbox.harbour.2026-05-07", moment)["candidates"].append(
                _candidate(103, "Dora Maar", "Conservative and Unionist Party", 52)
            )
        elif self.step == 2:  # a candidate dies: the Hill ballot is cancelled and replaced
            hill = self._touch("local.sandbox.hill.2026-05-07", moment)
            hill.update(
                cancelled=True,
                cancellation_reason="CANDIDATE_DEATH",
                replaced_by="local.sandbox.hill.2026-05-21",
            )
            replacement = _ballot(
                "local.sandbox.hill.2026-05-21",
                "Sandbox local election ward Hill",
                "2026-05-21",
                copy.deepcopy(hill["candidates"]),
                replaces="local.sandbox.hill.2026-05-07",
            )
            self.ballots[replacement["ballot_paper_id"]] = replacement
            self.updated[replacement["ballot_paper_id"]] = moment
        elif self.step == 3:  # the council moves a polling station
            self.stations["AA12AA"] = _station("e09000023.AB", "Harbour Sports Centre", -0.03, 51.47)
        elif self.step == 4:  # an election is withdrawn
            self.elections.pop(sorted(self.elections)[7])
        elif self.step == 5:  # a deploy: the same data, serialised differently
            self.noise = True

    def _touch(self, ballot_id: str, moment: datetime) -> dict[str, Any]:
        self.updated[ballot_id] = moment
        return self.ballots[ballot_id]

    def postcode(self, code: str) -> dict[str, Any] | None:
        """The /postcode answer for a sandbox postcode (None: unknown)."""
        services = _services("E09000023", "Lewisham Council", "England")
        answer: dict[str, Any] = {
            "address_picker": False,
            "addresses": [],
            "dates": [],
            "electoral_services": services,
            "registration": None,
            "postcode_location": {
                "type": "Feature",
                "properties": None,
                "geometry": {"type": "Point", "coordinates": [-0.02, 51.46]},
            },
        }
        if code == "AA12AA":
            answer["dates"] = [
                _date(
                    "2026-05-07", self.stations["AA12AA"], [self.ballots["local.sandbox.harbour.2026-05-07"]]
                )
            ]
        elif code == "AA12AB":
            hill = [
                b for b in self.ballots.values() if b["ballot_paper_id"].startswith("local.sandbox.hill.")
            ]
            answer["dates"] = [_date(b["poll_open_date"], _station(None), [b]) for b in hill]
        elif code == "AA13AA" and not self.picker_open:
            answer["dates"] = [
                _date(
                    "2026-05-07",
                    self.stations[PICKER_SLUGS[0]],
                    [self.ballots["local.sandbox.picker.2026-05-07"]],
                )
            ]
        elif code == "AA13AA":
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
        elif code == "AA14AA":
            by_date: dict[str, list[dict[str, Any]]] = {}
            for ballot_id in (
                "mayor.lewisham.2026-05-07",
                "local.lewisham.blackheath.2026-05-07",
                "local.lewisham.blackheath.2026-05-14",
                "parl.lewisham-east.by.2026-06-11",
            ):
                ballot = self.ballots[ballot_id]
                by_date.setdefault(ballot["poll_open_date"], []).append(ballot)
            answer["dates"] = [
                _date(date, _station("e09000023.LW", "Lewisham Town Hall"), ballots)
                for date, ballots in sorted(by_date.items())
            ]
        elif code == "AA15AA":
            station = _station(None)
            station["custom_finder"] = (
                "http://www.eoni.org.uk/Offices/Postcode-Search-Results?postcode=AA15AA"
            )
            answer["dates"] = [_date("2026-05-07", station, [self.ballots["nia.lagan-valley.2026-05-07"]])]
            answer["electoral_services"] = None
        elif code == "EH11YJ":
            answer["dates"] = [
                _date("2026-05-07", _station(None), [self.ballots["sp.c.edinburgh-central.2026-05-07"]])
            ]
            answer["electoral_services"] = _services("S12000036", "City of Edinburgh Council", "Scotland")
            answer["registration"] = _services("S12000036", "Lothian Valuation Joint Board", "Scotland")
        elif code != "AA11AA":
            return None
        return answer

    def address(self, slug: str) -> dict[str, Any] | None:
        """The /address answer for a sandbox address slug (None: unknown)."""
        if slug not in PICKER_SLUGS:
            return None
        answer = self.postcode("AA11AA")
        assert answer is not None
        answer["dates"] = [
            _date("2026-05-07", self.stations[slug], [self.ballots["local.sandbox.picker.2026-05-07"]])
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

    def _elections(self, count: int) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for n in range(count):
            council = f"council{n // 10:02d}"
            election_id = f"local.{council}.ward{n % 10}.2026-05-07"
            rows.append(
                {
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
            )
        return rows

    def page(self, offset: int, limit: int) -> tuple[int, list[dict[str, Any]]]:
        """One page of the elections list, in an order that moves between requests."""
        rows = [self.elections[k] for k in sorted(self.elections)]
        for boundary in range(limit, len(rows), limit):
            if self._rng.random() < 0.5:  # neighbours swap across the page edge: repeats and skips
                rows[boundary - 1], rows[boundary] = rows[boundary], rows[boundary - 1]
        return len(rows), rows[offset : offset + limit]


class DcServer(SimHost):
    """Serves a DcWorld; ``keys`` are the accepted auth tokens."""

    def __init__(self, world: DcWorld, keys: set[str], firewall_limit: int = 150) -> None:
        super().__init__("democracyclub")
        self.world = world
        self.keys = keys
        self.firewall_limit = firewall_limit
        self._recent: deque[float] = deque()
        self._anonymous: deque[float] = deque()

    def respond(self, request: web.Request) -> web.Response:
        """Route like the service does (trailing slashes included)."""
        if not _within(self._recent, self.firewall_limit, 300):
            return web.Response(status=403, text="Forbidden by firewall: too many requests\n")
        path = request.path
        if path.startswith("/api/next/"):
            return self._candidates_site(request)
        parts = path.strip("/").split("/")
        sandbox = len(parts) > 2 and parts[2] == "sandbox"
        if sandbox:
            parts = parts[:2] + parts[3:]
        if parts[:2] != ["api", "v1"] or not path.endswith("/"):
            return _json(404, {"detail": "Not found."})
        if not sandbox and request.query.get("auth_token") not in self.keys:
            return _json(401, {"message": "Unauthorized"})
        return self._developer_api(request, parts[2:], sandbox)

    async def play(self, step_seconds: float, stop: asyncio.Event) -> None:
        """Advance the timeline one step every ``step_seconds`` until it ends or ``stop`` is set."""
        while self.world.step < STEPS and not await wait_set(stop, step_seconds):
            self.world.advance()

    def _developer_api(self, request: web.Request, parts: list[str], sandbox: bool) -> web.Response:
        world = self.world
        if len(parts) == 2 and parts[0] == "postcode":
            answer = world.postcode(parts[1].replace(" ", "").upper())
            if answer is None:
                if sandbox:
                    return web.Response(status=404)
                return _json(400, {"error": "Could not geocode from any source"})
            return self._body(answer)
        if len(parts) == 2 and parts[0] == "address":
            answer = world.address(parts[1])
            return self._body(answer) if answer else _json(404, {"error": "Address not found"})
        if parts == ["elections"] and not sandbox:
            return self._elections(request)
        if len(parts) == 2 and parts[0] == "elections" and not sandbox:
            election = world.elections.get(parts[1])
            return self._body(election) if election else _json(404, {"detail": "Not found."})
        return _json(404, {"detail": "Not found."})

    def _elections(self, request: web.Request) -> web.Response:
        limit = min(100, int(request.query.get("limit", 100)))
        offset = int(request.query.get("offset", 0))
        count, rows = self.world.page(offset, limit)
        kept = {k: v for k, v in request.query.items() if k in NEXT_KEEPS}
        following = {**kept, "limit": str(limit), "offset": str(offset + limit)}
        base = f"{request.url.origin()}{request.path}"
        body = {
            "count": count,
            "next": f"{base}?{urlencode(following)}" if offset + limit < count else None,
            "previous": None,
            "results": rows,
        }
        return self._body(body)

    def _candidates_site(self, request: web.Request) -> web.Response:
        agent = request.headers.get("User-Agent", "").lower()
        if not agent or any(library in agent for library in LIBRARY_AGENTS):
            return web.Response(status=418, text="I'm a teapot\n")
        if request.path != "/api/next/ballots/":
            return _json(404, {"detail": "Not found."})
        key = request.query.get("auth_token") or request.headers.get("Authorization") or ""
        if key.removeprefix("Token ") not in self.keys and not _within(
            self._anonymous, ANONYMOUS_PER_MINUTE, 60
        ):
            wait = 60 - int(time.monotonic() - self._anonymous[0])
            return _json(429, {"detail": f"Request was throttled. Expected available in {wait} seconds."})
        rows = self.world.ballots_after(request.query.get("last_updated"))
        size = min(100, int(request.query.get("page_size", 100)))
        return self._body({"count": len(rows), "next": None, "previous": None, "results": rows[:size]})

    def _body(self, document: Any) -> web.Response:
        if self.world.noise:  # same data, other bytes: keys reversed, indented, floats as 1.0
            text = json.dumps(_reordered(document), indent=1)
        else:
            text = json.dumps(document, separators=(",", ":"))
        return web.Response(text=text, content_type="application/json")


def _reordered(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _reordered(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_reordered(item) for item in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _within(recent: deque[float], limit: int, window: float) -> bool:
    now = time.monotonic()
    while recent and recent[0] <= now - window:
        recent.popleft()
    if len(recent) >= limit:
        return False
    recent.append(now)
    return True


def _json(status: int, document: dict[str, Any]) -> web.Response:
    return web.json_response(document, status=status)
