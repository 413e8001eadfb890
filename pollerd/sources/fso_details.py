"""What an FSO results file says about itself: when it was written and how far the count is.

These become the ``details`` of an event. Reported as the file says it: completion flags can go
back, and one file writes a flag as the string "false".
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

SWISS_TIME = ZoneInfo("Europe/Zurich")
_STAND_KEYS = (
    "wahl_abgeschlossen",
    "kantone_total",
    "kantone_abgeschlossen",
    "gemeinden_total",
    "gemeinden_abgeschlossen",
)


def swiss_local_to_utc(text: str) -> str | None:
    """``2023-10-22T14:03:15`` (Swiss local time, no offset) as ISO UTC, or None if unreadable.

    Uses the Europe/Zurich rules, so summer (UTC+2) and winter (UTC+1) are both right; in the
    repeated hour of the autumn change the first (summer-time) reading is taken.
    """
    try:
        local = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if local.tzinfo is None:
        local = local.replace(tzinfo=SWISS_TIME)
    return local.astimezone(UTC).isoformat().replace("+00:00", "Z")


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


def truthy(flag: object) -> bool:
    """The FSO's flags: a bool, or (in one file) the string "true"/"false"."""
    if isinstance(flag, str):
        return flag.strip().lower() == "true"
    return flag is True
