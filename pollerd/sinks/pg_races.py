"""An AP query's rows in elex's tables as the postgres sink holds them between versions: per race,
each row's hash by its key, so a version's changed races are compared in memory and only the rows
that differ are sent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pollerd.sinks.pg_sync import typed
from pollerd.sinks.pg_tables import Table
from pollerd.versions.snapshot import SnapshotReading

Race = tuple[Any, Any]  # (statepostal, raceid)
Hashes = dict[Race, dict[tuple[Any, ...], int]]  # per race: each row's hash, by its key


@dataclass
class HeldRows:
    """What an AP query's rows in elex's tables are as of one version (hashes, not the rows), so
    the next version's changed races are compared here, and only the rows that differ are sent."""

    event_id: str
    tables: dict[str, Hashes]


def races_of_keys(keys: set[str]) -> set[Race]:
    """(statepostal, raceid) of race keys (``PA:1009:G``)."""
    return {(state, race) for state, race, *_ in (key.split(":") for key in keys)}


def rows_by_race(
    table: Table, rows: list[dict[str, Any]]
) -> dict[Race, dict[tuple[Any, ...], tuple[Any, ...]]]:
    """Rows as the table takes them, by race, then by key."""
    state_at, race_at = table.names.index("statepostal"), table.names.index("raceid")
    found: dict[Race, dict[tuple[Any, ...], tuple[Any, ...]]] = {}
    for key, values in typed(table, rows).items():
        found.setdefault((values[state_at], values[race_at]), {})[key] = values
    return found


def row_hashes(rows: dict[tuple[Any, ...], tuple[Any, ...]]) -> dict[tuple[Any, ...], int]:
    """Each row's hash, by its key."""
    return {key: hash(values) for key, values in rows.items()}


def only_races(snapshot: SnapshotReading, keys: set[str]) -> dict[str, Any]:
    """A snapshot document holding only these races."""
    races = [snapshot.races[key] for key in sorted(keys) if key in snapshot.races]
    return {"electionDate": snapshot.election_date, "races": races}
