"""The ``postgres`` sink's tables: their columns and SQL types, and the schema pollerd creates and
migrates under a prefix. elex's tables keep elex's column names, in elex's order."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cached_property
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.types.json import Jsonb

from pollerd.results.elex import COLUMNS, RACE_COLUMNS, REPORTING_UNIT_COLUMNS

SCHEMA_VERSION = 3

_ELEX_TYPES = {
    "ballotorder": "integer",
    "delegatecount": "integer",
    "electtotal": "integer",
    "electwon": "integer",
    "electiondate": "date",
    "lastupdated": "timestamptz",
    "precinctsreporting": "integer",
    "precinctsreportingpct": "double precision",
    "precinctstotal": "integer",
    "votecount": "bigint",
    "votepct": "double precision",
    **dict.fromkeys(
        (
            "incumbent",
            "initialization_data",
            "is_ballot_measure",
            "national",
            "runoff",
            "test",
            "uncontested",
            "winner",
            "ap_winner",
        ),
        "boolean",
    ),
}


@dataclass(frozen=True)
class Table:
    """One table: its name (before the prefix), its columns with their SQL types, its key."""

    name: str
    columns: tuple[tuple[str, str], ...]
    key: tuple[str, ...]

    @property
    def names(self) -> tuple[str, ...]:
        """The column names, in order."""
        return tuple(name for name, _ in self.columns)

    def values(self, row: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """A row's values in column order, each as its column's type (a value that is not of it
        becomes NULL); None when a key column is empty (the row cannot be stored)."""
        values = tuple(convert(row.get(name)) for name, convert in self._converters)
        return None if any(values[i] is None for i in self.key_at) else values

    @cached_property
    def key_at(self) -> tuple[int, ...]:
        """Where the key columns are among the columns."""
        return tuple(self.names.index(k) for k in self.key)

    @cached_property
    def _converters(self) -> tuple[tuple[str, Callable[[Any], Any]], ...]:
        return tuple((name, _CONVERTERS[kind]) for name, kind in self.columns)

    def create(self, prefix: str) -> sql.Composed:
        """CREATE TABLE, with the key as primary key."""
        columns = sql.SQL(", ").join(
            sql.SQL("{} {}{}").format(
                sql.Identifier(name), sql.SQL(kind), sql.SQL(" NOT NULL" if name in self.key else "")
            )
            for name, kind in self.columns
        )
        return sql.SQL("CREATE TABLE IF NOT EXISTS {} ({}, PRIMARY KEY ({}))").format(
            sql.Identifier(prefix + self.name), columns, sql.SQL(", ").join(map(sql.Identifier, self.key))
        )


def _elex(name: str, columns: tuple[str, ...], key: tuple[str, ...]) -> Table:
    return Table(name, tuple((c, _ELEX_TYPES.get(c, "text")) for c in columns), key)


RACES = _elex("races", RACE_COLUMNS, ("statepostal", "id"))
REPORTING_UNITS = _elex("reporting_units", REPORTING_UNIT_COLUMNS, ("statepostal", "raceid", "id"))
RESULTS = _elex("results", (*COLUMNS, "ap_winner"), ("statepostal", "id"))  # + AP's flag
_ORIGIN = (("source", "text"), ("resource", "text"), ("sequence", "bigint"), ("event_id", "text"))
CANTONS = Table(
    "fso_cantons",
    (
        *_ORIGIN,
        ("ballot", "text"),
        ("proposal", "text"),
        ("canton", "integer"),
        ("canton_name", "text"),
        ("complete", "boolean"),
        ("municipalities_total", "integer"),
        ("municipalities_counted", "integer"),
        ("figures", "jsonb"),
        ("upstream_at", "timestamptz"),
    ),
    ("source", "resource", "proposal", "canton"),
)
BALLOTS = Table(
    "dc_ballots",
    (
        *_ORIGIN,
        ("ballot_paper_id", "text"),
        ("ballot_title", "text"),
        ("poll_open_date", "date"),
        ("cancelled", "boolean"),
        ("cancellation_reason", "text"),
        ("replaced_by", "text"),
        ("last_updated", "timestamptz"),
    ),
    ("source", "ballot_paper_id"),
)
CANDIDATES = Table(
    "dc_candidates",
    (
        ("source", "text"),
        ("ballot_paper_id", "text"),
        ("person_id", "text"),
        ("name", "text"),
        ("party", "text"),
    ),
    ("source", "ballot_paper_id", "person_id"),
)
DOCUMENTS = Table(
    "documents",
    (
        ("source", "text"),
        ("resource", "text"),
        ("sequence", "bigint"),
        ("sha256", "text"),
        ("event_id", "text"),
        ("detected_at", "timestamptz"),
        ("url", "text"),
        ("content_type", "text"),
        ("size", "bigint"),
        ("payload", "jsonb"),  # the payload when it is JSON
        ("body", "bytea"),  # else its bytes
    ),
    ("source", "resource", "sequence"),
)
ELECTION_EVENTS = Table(
    "election_events",
    (
        ("event_id", "text"),
        ("version_event_id", "text"),
        ("source", "text"),
        ("resource", "text"),
        ("sequence", "bigint"),
        ("type", "text"),
        ("key", "text"),
        ("subject", "text"),
        ("state", "text"),
        ("upstream_at", "timestamptz"),
        ("initial", "boolean"),
        ("scope", "jsonb"),
        ("old", "jsonb"),
        ("new", "jsonb"),
        ("detected_at", "timestamptz"),
    ),
    ("event_id",),
)
PROGRESS = Table(  # per resource: the newest version written (older ones change no current rows)
    "pollerd_progress",
    (
        ("source", "text"),
        ("resource", "text"),
        ("sequence", "bigint"),
        ("event_id", "text"),
        ("races", "jsonb"),  # an AP query's race keys, so a race gone from it is deleted
        ("written_at", "timestamptz"),
    ),
    ("source", "resource"),
)
TABLES = (RACES, REPORTING_UNITS, RESULTS, CANTONS, BALLOTS, CANDIDATES, DOCUMENTS, ELECTION_EVENTS, PROGRESS)


class SchemaTooNew(Exception):
    """The tables were made by a newer pollerd."""


async def migrate(db: AsyncConnection[Any], prefix: str) -> None:
    """Create the tables (or bring them up to date), one process at a time."""
    meta = sql.Identifier(prefix + "pollerd_schema")
    async with db.transaction():
        await db.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"pollerd sink {prefix}",))
        await db.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} (version integer NOT NULL)").format(meta))
        cursor = await db.execute(sql.SQL("SELECT max(version) FROM {}").format(meta))
        row = await cursor.fetchone()
        version = int(row[0]) if row and row[0] is not None else 0
        if version > SCHEMA_VERSION:
            raise SchemaTooNew(f"{prefix}pollerd_schema: version {version} is newer than this pollerd's")
        if version < 1:
            for table in TABLES:
                await db.execute(table.create(prefix))
            for statement in _FIRST_EXTRAS:
                await db.execute(sql.SQL(statement).format(p=sql.SQL(prefix)))
        if version < 2:  # the desk's calls: AP's own flag beside the published winner
            await db.execute(
                sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS ap_winner boolean").format(
                    sql.Identifier(prefix + RESULTS.name)
                )
            )
        if version < 3:  # elex 2.4.4's columns an older pollerd's tables lack
            for table, column in _ELEX_244:
                await db.execute(
                    sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}").format(
                        sql.Identifier(prefix + table.name),
                        sql.Identifier(column),
                        sql.SQL(_ELEX_TYPES.get(column, "text")),
                    )
                )
        if version < SCHEMA_VERSION:
            await db.execute(sql.SQL("INSERT INTO {} VALUES (%s)").format(meta), (SCHEMA_VERSION,))


_ELEX_244 = (
    (RESULTS, "electtotal"),
    (RESULTS, "electwon"),
    (RACES, "is_ballot_measure"),
    (REPORTING_UNITS, "electtotal"),
)

_FIRST_EXTRAS = (
    "CREATE OR REPLACE VIEW {p}latest AS SELECT DISTINCT ON (source, resource) * FROM {p}documents"
    " ORDER BY source, resource, sequence DESC",
    "CREATE UNIQUE INDEX IF NOT EXISTS {p}documents_event_id ON {p}documents (event_id)",
    "CREATE INDEX IF NOT EXISTS {p}election_events_by_time ON {p}election_events (detected_at)",
    "CREATE INDEX IF NOT EXISTS {p}results_by_race ON {p}results (statepostal, raceid)",
    "CREATE INDEX IF NOT EXISTS {p}reporting_units_by_race ON {p}reporting_units (statepostal, raceid)",
)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) or value is None else str(value)


def _whole(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    return _int(value)


def _real(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _flag(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _json(value: Any) -> Jsonb | None:
    return None if value is None else Jsonb(value)


def _bytes(value: Any) -> bytes | None:
    return value if isinstance(value, bytes) else None


def _int(value: Any) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


def _date(value: Any) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def _instant(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


_CONVERTERS: dict[str, Callable[[Any], Any]] = {  # a value as a column of each type takes it, or None
    "text": _text,
    "integer": _whole,
    "bigint": _whole,
    "double precision": _real,
    "boolean": _flag,
    "jsonb": _json,
    "bytea": _bytes,
    "date": _date,
    "timestamptz": _instant,
}
