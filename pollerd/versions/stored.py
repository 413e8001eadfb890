"""How an AP query's version is kept: a checkpoint (the whole canonical snapshot, as every
version was kept before) or a delta (the races that version changed, whole, and the version it
builds on), read back into a reading by walking the deltas down to a checkpoint.

A delta's bytes begin ``{"_delta":`` (its keys are sorted, and ``_`` sorts before every key of
a snapshot), so telling the two apart reads a few bytes, not the document.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import orjson

from pollerd.core.canonical import dump_sorted
from pollerd.core.payload import kept_json
from pollerd.election.ap import race_key, races_of
from pollerd.versions.readings import Readings
from pollerd.versions.snapshot import SnapshotReading

DELTA_MARK = b'{"_delta":'
DEFAULT_CHECKPOINT_EVERY = 100  # versions: a restart reads at most this many deltas


def checkpoint_bytes(reading: SnapshotReading) -> bytes:
    """A whole version: the canonical snapshot."""
    return dump_sorted(reading.document())


def delta_bytes(reading: SnapshotReading, base: str) -> bytes:
    """A version as its change from ``base`` (the sha256 of the version before it)."""
    return dump_sorted({"_delta": {"base": base}, **reading.change()})


def is_delta(path: Path) -> bool:
    """Whether a stored payload is a delta (reads its first bytes)."""
    with path.open("rb") as file:
        return file.read(len(DELTA_MARK)) == DELTA_MARK


_BASE_AT = len(b'{"_delta":{"base":"')


def delta_base(path: Path) -> str | None:
    """The sha256 of the version a stored delta builds on (its first bytes say it); None for a
    whole payload, or one that is gone."""
    try:
        with path.open("rb") as file:
            head = file.read(_BASE_AT + 64)
    except OSError:
        return None
    if not head.startswith(DELTA_MARK) or len(head) < _BASE_AT + 64:
        return None
    return head[_BASE_AT:].decode("ascii", "replace")


Fetch = Callable[[str], Awaitable[Path]]  # a stored payload's local file, by sha256
Run = Callable[[Callable[[], Any]], Awaitable[Any]]  # work for a worker thread


class VersionReader:
    """Reads stored versions back: from the readings held in memory where it can, else from the
    payload files, a delta applied onto the reading of the version it builds on."""

    def __init__(self, readings: Readings, fetch: Fetch, run: Run) -> None:
        self.readings = readings
        self.fetch = fetch  # a stored payload's local file
        self._run = run

    async def read(self, sha256: str) -> Any:
        """The reading of a stored version (None when it is no JSON or is gone)."""
        held = self.readings.get(sha256)
        if held is not None:
            return held
        deltas: list[tuple[str, dict[str, Any], int]] = []
        current, base = sha256, None
        while True:
            held = self.readings.get(current)
            if held is not None:
                base = held
                break
            try:
                path = await self.fetch(current)
                raw: bytes = await self._run(path.read_bytes)
            except OSError:
                return None
            if not raw.startswith(DELTA_MARK):
                base = await self._run(partial(read_whole, raw))
                self.readings.put(current, base, len(raw))
                break
            delta = await self._run(partial(orjson.loads, raw))
            deltas.append((current, delta, len(raw)))
            current = str(delta["_delta"]["base"])
        for sha, delta, weight in reversed(deltas):
            base = await self._run(partial(apply_delta, base, delta))
            self.readings.put(sha, base, weight)
        return base


def read_whole(raw: bytes) -> Any:
    """A whole payload's reading: an AP snapshot as a SnapshotReading, any other JSON as parsed."""
    document = kept_json(raw)
    if isinstance(document, dict) and set(document) == {"electionDate", "races"}:
        races = races_of(document)
        return SnapshotReading(document.get("electionDate"), races, frozenset(races))
    return document


def apply_delta(base: Any, delta: dict[str, Any]) -> SnapshotReading:
    """The version a delta describes, from the reading of the version it builds on."""
    races = dict(base.races) if isinstance(base, SnapshotReading) else {}
    changed = set()
    for race in delta.get("races") or []:
        key = race_key(race)
        races[key] = race
        changed.add(key)
    return SnapshotReading(delta.get("electionDate"), races, frozenset(changed))
