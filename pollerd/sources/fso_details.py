"""What an FSO results file says about itself: when it was written and how far the count is.

These become the ``details`` of an event. Reported as the file says it: completion flags can go
back, and one file writes a flag as the string "false".
"""

from __future__ import annotations

from typing import Any

from pollerd.election.fso import swiss_local_to_utc, truthy

_STAND_KEYS = (
    "wahl_abgeschlossen",
    "kantone_total",
    "kantone_abgeschlossen",
    "gemeinden_total",
    "gemeinden_abgeschlossen",
)


def fso_details(document: Any) -> dict[str, Any] | None:
    """The ``timestamp`` (as UTC and as written) and progress of an FSO election or vote file."""
    if not isinstance(document, dict):
        return None
    details: dict[str, Any] = {}
    stamp = document.get("timestamp")
    if isinstance(stamp, str):
        details["timestamp"] = swiss_local_to_utc(stamp)
        details["timestamp_local"] = stamp
    stand = document.get("stand")
    if isinstance(stand, dict):
        details["stand"] = {key: stand[key] for key in _STAND_KEYS if key in stand}
    cantons = document.get("stand_kantone")
    if isinstance(cantons, list):
        flags = [c.get("kanton_abgeschlossen") for c in cantons if isinstance(c, dict)]
        details["cantons_reporting"] = len(flags)
        details["cantons_complete"] = sum(1 for flag in flags if truthy(flag))
    proposals = _proposals(document)
    if proposals is not None:
        details["vorlagen"] = proposals
    return details or None


def _proposals(document: dict[str, Any]) -> list[dict[str, Any]] | None:
    """Per proposal of a vote file: finished and provisional flags."""
    switzerland = document.get("schweiz")
    if not isinstance(switzerland, dict) or not isinstance(switzerland.get("vorlagen"), list):
        return None
    return [
        {
            "vorlagen_id": item.get("vorlagenId"),
            "beendet": item.get("vorlageBeendet"),
            "provisorisch": item.get("provisorisch"),
        }
        for item in switzerland["vorlagen"]
        if isinstance(item, dict)
    ]
