"""Democracy Club changes an editor cares about, from two consecutive versions of one watched
answer: a ballot cancelled, a candidate added or withdrawn, a polling station moved, an election
withdrawn.

Resources are named by what they hold: ``postcode-*`` and ``address-*`` (a /postcode or /address
answer: dates, each with a polling station and ballots), ``ballot-*`` (a row of the candidates
site's ballots feed), ``election-*`` (a row of /elections/, or ``{"vanished": true}``).
"""

from __future__ import annotations

from typing import Any

from pollerd.core.canonical import canonical_hash, plain_numbers
from pollerd.core.election import Fact, table

Document = dict[str, Any]


def dc_facts(resource: str, old: Any, new: Any) -> list[Fact]:
    """The election events between two versions of one Democracy Club resource (read with
    integral floats as integers: the service has served ``101.0`` for ``101`` after a deploy)."""
    old_doc = plain_numbers(old) if isinstance(old, dict) else None
    if not isinstance(new, dict):
        return []
    new = plain_numbers(new)
    if resource.startswith(("postcode-", "address-")):
        return _ballot_facts(answer_ballots(old_doc), answer_ballots(new), old_doc is None) + _station_facts(
            resource, old_doc, new
        )
    if resource.startswith("ballot-"):
        before = {old_doc["ballot_paper_id"]: old_doc} if old_doc and "ballot_paper_id" in old_doc else {}
        after = {new["ballot_paper_id"]: new} if "ballot_paper_id" in new else {}
        return _ballot_facts(before if old_doc is not None else None, after, old_doc is None)
    if resource.startswith("election-"):
        return _election_facts(resource.removeprefix("election-"), old_doc, new)
    return []


def _ballot_facts(old: dict[str, Document] | None, new: dict[str, Document], first: bool) -> list[Fact]:
    facts = []
    for ballot_id, ballot in sorted(new.items()):
        before = (old or {}).get(ballot_id)
        if ballot.get("cancelled") and not (before or {}).get("cancelled"):
            facts.append(_cancelled(ballot_id, ballot, before, initial=before is None))
        if before is not None and not first:
            facts += _candidate_facts(ballot_id, ballot, before)
    return facts


def _cancelled(ballot_id: str, ballot: Document, before: Document | None, initial: bool) -> Fact:
    fields = {
        "ballot_paper_id": ballot_id,
        "ballot_title": ballot.get("ballot_title") or ballot_id,
        "cancellation_reason": ballot.get("cancellation_reason"),
        "replaced_by": ballot.get("replaced_by"),
        "poll_open_date": ballot.get("poll_open_date"),
        **_why_cancelled(ballot),
    }
    old = {"cancelled": False} if before is not None else None
    return Fact(
        "ballot_cancelled",
        ballot_id,
        f"ballot:{ballot_id}",
        "cancelled",
        old,
        fields,
        last_updated(ballot),
        {},
        initial,
    )


_UNCONTESTED = frozenset({"EQUAL_CANDIDATES", "UNDER_CONTESTED", "NO_CANDIDATES"})


def _why_cancelled(ballot: Document) -> dict[str, Any]:
    """Why a poll was cancelled, in words: elected unopposed where Democracy Club says the ballot
    was uncontested, or gives no reason and the candidates do not exceed the seats; else its
    reason."""
    seats = ballot.get("seats_contested")
    count = len(candidates(ballot))
    reason = ballot.get("cancellation_reason")
    # Democracy Club's own reason first; without one, as many candidates as seats (or fewer)
    unopposed = reason in _UNCONTESTED or (not reason and isinstance(seats, int) and 0 < count <= seats)
    if unopposed and isinstance(seats, int):
        why = f"elected unopposed: {count} candidate{'s' * (count != 1)} for {seats} seat{'s' * (seats != 1)}"
    elif unopposed:
        why = "elected unopposed"
    else:
        why = str(reason) if reason else "no reason given"
    return {"seats_contested": seats, "candidates_count": count, "uncontested_elected": unopposed, "why": why}


def _candidate_facts(ballot_id: str, ballot: Document, before: Document) -> list[Fact]:
    now, was = candidates(ballot), candidates(before)
    facts = []
    for person in sorted(now.keys() - was.keys()):
        facts.append(_candidate("candidate_added", "in", ballot_id, ballot, now[person]))
    for person in sorted(was.keys() - now.keys()):
        facts.append(_candidate("candidate_withdrawn", "out", ballot_id, ballot, was[person]))
    return facts


def _candidate(kind: str, state: str, ballot_id: str, ballot: Document, who: Document) -> Fact:
    fields = {
        "ballot_paper_id": ballot_id,
        "ballot_title": ballot.get("ballot_title") or ballot_id,
        "candidate": who["name"],
        "person_id": who["id"],
        "party": who["party"],
    }
    return Fact(
        kind, ballot_id, f"candidate:{ballot_id}:{who['id']}", state, None, fields, last_updated(ballot)
    )


def candidates(ballot: Document) -> dict[str, Document]:
    """Who stands on a ballot, by person id (the name where there is none): id, name, party."""
    people = ballot.get("candidates") or ballot.get("candidacies") or []
    found = {}
    for entry in people:
        if not isinstance(entry, dict):
            continue
        person, party = table(entry.get("person")), table(entry.get("party"))
        name = str(person.get("name") or "?")
        person_id = str(person.get("ynr_id") or person.get("id") or name)
        found[person_id] = {"id": person_id, "name": name, "party": party.get("party_name")}
    return found


def _station_facts(resource: str, old: Document | None, new: Document) -> list[Fact]:
    if old is None:
        return []
    before = {d.get("date"): d for d in dates(old)}
    facts = []
    for day in dates(new):
        previous = before.get(day.get("date"))
        station, was = day.get("polling_station"), (previous or {}).get("polling_station")
        if previous is None or station == was:
            continue
        ballots = ",".join(
            sorted(b.get("ballot_paper_id", "") for b in day.get("ballots") or [] if isinstance(b, dict))
        )
        fields = {
            "date": day.get("date"),
            "ballots": ballots,
            "where": resource,
            "station": _station_text(station),
        }
        facts.append(
            Fact(
                "polling_station_changed",
                ballots or str(day.get("date")),
                f"station:{resource}:{day.get('date')}",
                canonical_hash(station),
                {"station": _station_text(was)},
                fields,
            )
        )
    return facts


def _station_text(station: Any) -> str | None:
    """The station's address as one line (None: not known)."""
    if not isinstance(station, dict) or not isinstance(station.get("station"), dict):
        return None
    properties = station["station"].get("properties") or {}
    return str(properties.get("address") or "").replace("\n", ", ") or None


def _election_facts(election_id: str, old: Document | None, new: Document) -> list[Fact]:
    if new.get("vanished"):
        if old is None:
            return []
        fields = {"election_id": election_id, "election_title": old.get("election_title") or election_id}
        return [Fact("election_withdrawn", election_id, f"election:{election_id}", "withdrawn", None, fields)]
    if new.get("cancelled") and not (old or {}).get("cancelled"):
        return [_cancelled(election_id, new | {"ballot_title": new.get("election_title")}, old, old is None)]
    return []


def answer_ballots(answer: Document | None) -> dict[str, Document]:
    """A /postcode or /address answer's ballots, by ballot_paper_id."""
    return {
        b["ballot_paper_id"]: b
        for d in dates(answer)
        for b in d.get("ballots") or []
        if isinstance(b, dict) and "ballot_paper_id" in b
    }


def dates(answer: Document | None) -> list[Document]:
    """A /postcode or /address answer's dates (each with its station and ballots)."""
    return [d for d in (answer or {}).get("dates") or [] if isinstance(d, dict)]


def last_updated(ballot: Document) -> str | None:
    """When Democracy Club last changed a ballot (its own stamp), if it says."""
    stamp = ballot.get("last_updated") or ballot.get("modified")
    return stamp if isinstance(stamp, str) else None
