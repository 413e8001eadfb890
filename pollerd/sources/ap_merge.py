"""Merging AP ``nextrequest`` deltas into a complete snapshot, by race key, never by position.

A delta holds whole race objects for the races that changed. A race is upserted: its fields
replaced, its reporting units upserted by (level, reportingunitID), and each unit's candidates
taken from the delta (the list says who is in it) with fields merged by candidateID, so a
``candidateInfo=brief`` update keeps the names from the first full answer, but never a winner flag
the delta no longer carries (a retracted call).
"""

from __future__ import annotations

import json
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pollerd.election.ap import race_key

Race = dict[str, Any]
_CALL_FIELDS = ("winner", "winnerDateTime")


@dataclass
class Snapshot:
    """Every race of a query as of the last answer, by race key."""

    election_date: str | None = None
    races: dict[str, Race] = field(default_factory=dict)

    def merge(self, answer: dict[str, Any]) -> set[str]:
        """Apply one answer (full or delta); the keys of the races that changed."""
        self.election_date = answer.get("electionDate", self.election_date)
        changed = set()
        for race in answer.get("races") or []:
            if not isinstance(race, dict):
                continue
            key = race_key(race)
            old = self.races.get(key)
            merged = race if old is None else _merge_race(old, race)
            if merged != old:
                self.races[key] = merged
                changed.add(key)
        return changed

    def to_bytes(self) -> bytes:
        """The snapshot as sinks receive it: canonical JSON, races in key order."""
        document = {
            "electionDate": self.election_date,
            "races": [self.races[key] for key in sorted(self.races)],
        }
        return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    def last_updated(self, keys: set[str]) -> float | None:
        """The newest ``lastUpdated`` among these races' reporting units (AP's own time of the
        change), as a Unix time; None when none says."""
        stamps = [
            unit.get("lastUpdated")
            for key in keys
            if key in self.races
            for unit in self.races[key].get("reportingUnits") or []
            if isinstance(unit, dict)
        ]
        times = []
        for stamp in stamps:
            if isinstance(stamp, str):
                with suppress(ValueError):
                    times.append(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp())
        return max(times, default=None)

    @classmethod
    def from_bytes(cls, body: bytes) -> Snapshot:
        """The inverse of to_bytes."""
        document = json.loads(body)
        snapshot = cls(document.get("electionDate"))
        snapshot.merge(document)
        return snapshot


def _merge_race(old: Race, new: Race) -> Race:
    merged = {**old, **new}
    if "reportingUnits" in new and "reportingUnits" in old:
        merged["reportingUnits"] = _upsert(
            old["reportingUnits"], new["reportingUnits"], _unit_key, _merge_unit
        )
    return merged


def _merge_unit(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    merged = {**old, **new}
    if "candidates" in new and "candidates" in old:
        known = {c.get("candidateID"): c for c in old["candidates"] if isinstance(c, dict)}
        merged["candidates"] = [
            {**_lasting(known.get(c.get("candidateID"), {})), **c}
            for c in new["candidates"]
            if isinstance(c, dict)
        ]
    return merged


def _lasting(candidate: dict[str, Any]) -> dict[str, Any]:
    """What a later answer keeps of a candidate when it does not repeat it: the names, never the
    winner flag (AP sends it whenever there is one, brief answers too: its absence retracts a call)."""
    return {k: v for k, v in candidate.items() if k not in _CALL_FIELDS}


def _unit_key(unit: dict[str, Any]) -> tuple[str, str]:
    return str(unit.get("level", "")), str(unit.get("reportingunitID", ""))


def _upsert(
    old: list[dict[str, Any]], new: list[dict[str, Any]], key: Any, merge: Any
) -> list[dict[str, Any]]:
    merged = {key(item): item for item in old if isinstance(item, dict)}
    for item in new:
        if isinstance(item, dict):
            k = key(item)
            merged[k] = merge(merged[k], item) if k in merged else item
    return list(merged.values())
