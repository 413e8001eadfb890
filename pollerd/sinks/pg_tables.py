"""The ``postgres`` sink's tables: their columns and SQL types, and the schema pollerd creates and
migrates under a prefix. elex's tables keep elex's column names, in elex's order."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.types.json import Jsonb

from pollerd.results.elex import COLUMNS, RACE_COLUMNS, REPORTING_UNIT_COLUMNS

SCHEMA_VERSION = 1

_ELEX_TYPES = {
    "ballotorder": "integer",
    "delegatecount": "integer",
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
        values = tuple(_typed(kind, row.get(name)) for name, kind in self.columns)
        named = dict(zip(self.names, values, strict=True))
        return None if any(named[k] is None for k in self.key) else values

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
RESULTS = _elex("results", COLUMNS, ("statepostal", "id"))
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
            await db.execute(sql.SQL("INSERT INTO {} VALUES (%s)").format(meta), (SCHEMA_VERSION,))


_FIRST_EXTRAS = (
    "CREATE OR REPLACE VIEW {p}latest AS SELECT DISTINCT ON (source, resource) * FROM {p}documents"
    " ORDER BY source, resource, sequence DESC",
    "CREATE UNIQUE INDEX IF NOT EXISTS {p}documents_event_id ON {p}documents (event_id)",
    "CREATE INDEX IF NOT EXISTS {p}election_events_by_time ON {p}election_events (detected_at)",
    "CREATE INDEX IF NOT EXISTS {p}results_by_race ON {p}results (statepostal, raceid)",
    "CREATE INDEX IF NOT EXISTS {p}reporting_units_by_race ON {p}reporting_units (statepostal, raceid)",
)


def _typed(kind: str, value: Any) -> Any:
    """``value`` as a column of ``kind`` takes it, or None."""
    if value is None:
        return None
    if kind == "text":
        return value if isinstance(value, str) else str(value)
    if kind in ("integer", "bigint"):
        if isinstance(value, bool):
            return None
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return value if isinstance(value, int) else _int(value)
    if kind == "double precision":
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
    if kind == "boolean":
        return value if isinstance(value, bool) else None
    if kind == "jsonb":
        return Jsonb(value)
    if kind == "bytea":
        return value if isinstance(value, bytes) else None
    if kind == "date":
        return _date(value)
    if kind == "timestamptz":
        return _instant(value)
    raise ValueError(f"no column type {kind}")


def _int(value: Any) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


def _date(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def _instant(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
