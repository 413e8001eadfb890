"""An FSO results file as rows: one per canton (per proposal, in a vote file) with its progress
and its figures, as the election rules read them."""

from __future__ import annotations

from typing import Any

from pollerd.election.fso import ballot_of, canton_counts, swiss_local_to_utc


def canton_rows(resource: str, document: Any) -> list[dict[str, Any]]:
    """The cantons of one version of an FSO file (none when it is not a results file)."""
    stamp = document.get("timestamp") if isinstance(document, dict) else None
    at = swiss_local_to_utc(stamp) if isinstance(stamp, str) else None
    ballot = ballot_of(resource)
    return [
        {
            "ballot": ballot,
            "proposal": "" if count.proposal is None else str(count.proposal),
            "canton": number,
            "canton_name": count.name,
            "complete": count.complete,
            "municipalities_total": count.counts.get("gemeinden_total"),
            "municipalities_counted": count.counts.get("gemeinden_abgeschlossen"),
            "figures": count.figures,
            "upstream_at": at,
        }
        for count in canton_counts(document)
        if (number := _number(count.number)) is not None
    ]


def _number(value: Any) -> int | None:
    """The FSO's canton number (an int in election files, a string in vote files)."""
    try:
        return int(str(value))
    except ValueError:
        return None
