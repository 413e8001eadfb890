"""Merging AP ``nextrequest`` deltas into a complete snapshot, by race key, never by position.

A delta holds whole race objects for the races that changed. A race is upserted: its fields
replaced, its reporting units upserted by (level, reportingunitID), and each unit's candidates
taken from the delta (the list says who is in it) with fields merged by candidateID, so a
``candidateInfo=brief`` update keeps the names from the first full answer, but never a winner flag
the delta no longer carries (a retracted call).

A merge never changes a race object in place: a changed race is a new object, so a reading of
one version (``Snapshot.reading``) stays true while later answers are merged, and two versions
share every race that did not change. Each race keeps the sha256 of its canonical form, so the
snapshot's digest costs the changed races' hashing, not the whole document's.
"""

from __future__ import annotations

import hashlib
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pollerd.core.canonical import dump_sorted
from pollerd.election.ap import race_key

Race = dict[str, Any]
_CALL_FIELDS = ("winner", "winnerDateTime")


@dataclass(frozen=True)
class SnapshotReading:
    """One version of a query's snapshot, as read: every race by key (shared with the versions
    before and after it), and the keys of the races this version changed."""

    election_date: str | None
    races: dict[str, Race]
    changed: frozenset[str]

    def document(self) -> dict[str, Any]:
        """The whole snapshot as sinks receive it: races in key order."""
        return {"electionDate": self.election_date, "races": [self.races[k] for k in sorted(self.races)]}

    def change(self) -> dict[str, Any]:
        """Only the races this version changed, whole, in key order (the shape of an AP delta)."""
        races = [self.races[k] for k in sorted(self.changed) if k in self.races]
        return {"electionDate": self.election_date, "races": races}


@dataclass
class Snapshot:
    """Every race of a query as of the last answer, by race key, with each race's digest."""

    election_date: str | None = None
    races: dict[str, Race] = field(default_factory=dict)
    _digests: dict[str, tuple[bytes, int]] = field(default_factory=dict, repr=False)

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
                self._digests.pop(key, None)
                changed.add(key)
        return changed

    def reading(self, changed: set[str] | frozenset[str]) -> SnapshotReading:
        """This version as a reading that later merges leave as it is (a copy of the race table,
        not of the races)."""
        return SnapshotReading(self.election_date, dict(self.races), frozenset(changed))

    def digest(self) -> tuple[str, int]:
        """The snapshot's identity and its size: sha256 over the election date and each race's
        key and sha256, in key order; and the length of ``to_bytes()``. Only the races changed
        since the last call are serialized."""
        date = dump_sorted(self.election_date)
        total = hashlib.sha256(date)
        size = len(b'{"electionDate":,"races":[]}') + len(date) + max(len(self.races) - 1, 0)
        for key in sorted(self.races):
            known = self._digests.get(key)
            if known is None:
                body = dump_sorted(self.races[key])
                known = self._digests[key] = (hashlib.sha256(body).digest(), len(body))
            total.update(b"\n" + key.encode() + b"\0" + known[0])
            size += known[1]
        return total.hexdigest(), size

    def to_bytes(self) -> bytes:
        """The snapshot as sinks receive it: canonical JSON, races in key order."""
        return dump_sorted(self.reading(frozenset()).document())

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
    def of(cls, reading: SnapshotReading) -> Snapshot:
        """A snapshot to merge into, starting from a version's reading."""
        return cls(reading.election_date, dict(reading.races))


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
