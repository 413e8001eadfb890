"""Democracy Club answers as rows: one per ballot and one per candidate on it, with the fields
the election rules read (a /postcode or /address answer's ballots, or a ballots-feed row)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pollerd.core.canonical import plain_numbers
from pollerd.election.dc import answer_ballots, candidates, last_updated


@dataclass
class BallotRows:
    """The ballots an answer holds and who stands on each."""

    ballots: list[dict[str, Any]] = field(default_factory=list)
    candidates: list[dict[str, Any]] = field(default_factory=list)


def ballot_rows(resource: str, document: Any) -> BallotRows:
    """The rows of one version of a Democracy Club resource (none for an elections-list row)."""
    if not isinstance(document, dict):
        return BallotRows()
    document = plain_numbers(document)
    if resource.startswith(("postcode-", "address-")):
        found = answer_ballots(document)
    elif resource.startswith("ballot-") and "ballot_paper_id" in document:
        found = {str(document["ballot_paper_id"]): document}
    else:
        return BallotRows()
    rows = BallotRows()
    for ballot_id, ballot in sorted(found.items()):
        rows.ballots.append(
            {
                "ballot_paper_id": ballot_id,
                "ballot_title": ballot.get("ballot_title"),
                "poll_open_date": ballot.get("poll_open_date"),
                "cancelled": bool(ballot.get("cancelled")),
                "cancellation_reason": ballot.get("cancellation_reason"),
                "replaced_by": ballot.get("replaced_by"),
                "last_updated": last_updated(ballot),
            }
        )
        rows.candidates += [
            {"ballot_paper_id": ballot_id, "person_id": who["id"], "name": who["name"], "party": who["party"]}
            for who in candidates(ballot).values()
        ]
    return rows
