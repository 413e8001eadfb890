"""``kind = "postgres"``: each change written into tables a newsroom queries, in one transaction,
so a reader sees a whole version or none of it.

- An AP query's snapshot keeps elex's ``races``, ``reporting_units`` and ``results`` current:
  only the races the version changed are written (every race after a gap in the versions), and
  within them only the rows that differ.
- Any other payload becomes a row of ``documents`` (``latest``: the newest of each resource); an
  FSO results file also keeps its rows of ``fso_cantons``, a Democracy Club answer its
  ``dc_ballots`` and ``dc_candidates``.
- Election events go to ``election_events``.

A version older than the newest one written for its resource (a dead letter sent again) changes
no current row; redelivering an event writes nothing. The tables are made, and migrated, by the
sink itself, under its ``prefix``.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import AsyncConnection, sql
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from pollerd.config import PostgresSinkConfig
from pollerd.core.model import Event
from pollerd.desk.book import DESK_RESOURCE
from pollerd.desk.judge import CALL_TYPES
from pollerd.desk.published import as_published
from pollerd.results.ballots import ballot_rows
from pollerd.results.cantons import canton_rows
from pollerd.results.elex import ElexTables, elex_tables
from pollerd.sinks.base import DeliveryFailed
from pollerd.sinks.pg_races import Hashes, HeldRows, Race, only_races, races_of_keys, row_hashes, rows_by_race
from pollerd.sinks.pg_sync import apply, sync
from pollerd.sinks.pg_tables import (
    BALLOTS,
    CANDIDATES,
    CANTONS,
    ELECTION_EVENTS,
    RACES,
    REPORTING_UNITS,
    RESULTS,
    SchemaTooNew,
    Table,
    migrate,
)
from pollerd.versions.payload import Payload
from pollerd.versions.snapshot import SnapshotReading

ELEX = (RACES, REPORTING_UNITS, RESULTS)

MAX_DOCUMENT_BYTES = 256 * 1024 * 1024  # above: the row keeps the version's facts, not its bytes


@dataclass
class WriteStats:
    """What the sink has written since it started."""

    transactions: int = 0
    rows: int = 0
    seconds: float = 0.0  # inside the database transactions
    committed_at: float = 0.0  # time.perf_counter() at the last commit (the rows visible from then)


@dataclass(frozen=True)
class _Payload:
    raw: bytes | None  # None: too large to hold
    document: Any  # parsed JSON; None when it is none


@dataclass(frozen=True)
class _Progress:
    sequence: int
    event_id: str | None
    races: list[str]


class PostgresSink:
    """Writes every change into PostgreSQL tables, one transaction per change."""

    def __init__(self, config: PostgresSinkConfig, user_agent: str) -> None:
        self.name = config.name
        self.stats = WriteStats()
        self._config = config
        self._prefix = config.prefix
        self._application = f"pollerd sink {config.name}"[:63]
        self._pool: AsyncConnectionPool[AsyncConnection[Any]] | None = None
        self._opening = asyncio.Lock()
        self._held: dict[tuple[str, str], HeldRows] = {}  # per AP query

    async def deliver(self, event: Event, payload: Payload, epoch: int | None = None) -> None:
        """Write the version in one transaction; DeliveryFailed when the database did not take it
        (permanent when it refused the data itself). An AP snapshot is taken as its reading (the
        poll's, held in memory): only its changed races are looked at."""
        reading = await payload.reading()
        if isinstance(reading, SnapshotReading) and "changed_races" in (event.details or {}):
            content = _Payload(None, reading)
        else:
            raw = await asyncio.to_thread(_read, await payload.path(), event.size)
            document = reading.document() if isinstance(reading, SnapshotReading) else reading
            content = _Payload(raw, document)
        try:
            await self._deliver(event, content)
        except BaseException:
            self._held.pop((event.source, event.resource), None)  # the rows it describes rolled back
            raise

    async def _deliver(self, event: Event, content: _Payload) -> None:
        try:
            pool = await self._open()
            async with pool.connection(timeout=self._config.timeout) as db:
                started = time.perf_counter()
                async with db.transaction():
                    rows = await self._write(db, event, content)
                self.stats.committed_at = time.perf_counter()
                self.stats.transactions += 1
                self.stats.rows += rows
                self.stats.seconds += self.stats.committed_at - started
        except psycopg.DataError as exc:
            raise DeliveryFailed(f"{self.name}: {_reason(exc)}", permanent=True) from None
        except (psycopg.Error, PoolTimeout) as exc:
            raise DeliveryFailed(f"{self.name}: {_reason(exc)}") from None
        except SchemaTooNew as exc:  # kept in the outbox until this pollerd is upgraded
            raise DeliveryFailed(f"{self.name}: {exc}") from None

    async def close(self) -> None:
        """Close the connections."""
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def _open(self) -> AsyncConnectionPool[AsyncConnection[Any]]:
        """The pool, opened and the tables migrated on first use (again after a failed start)."""
        async with self._opening:
            if self._pool is None:
                extra: dict[str, Any] = {"autocommit": True, "application_name": self._application}
                if self._config.password is not None:
                    extra["password"] = self._config.password.get_secret_value()
                pool: AsyncConnectionPool[AsyncConnection[Any]] = AsyncConnectionPool(
                    self._config.url.get_secret_value(), min_size=1, max_size=2, kwargs=extra, open=False
                )
                try:
                    await pool.open(wait=True, timeout=self._config.timeout)
                    async with pool.connection() as db:
                        await migrate(db, self._prefix)
                except BaseException:
                    await pool.close()
                    raise
                self._pool = pool
            return self._pool

    async def _write(self, db: AsyncConnection[Any], event: Event, content: _Payload) -> int:
        """Everything the version changes; the number of rows written."""
        progress = await self._progress(db, event)
        rows = await sync(
            db,
            self._prefix,
            ELECTION_EVENTS,
            [_election_row(event, fact) for fact in event.election_events()],
        )
        newest = event.sequence > progress.sequence
        races: list[str] | None = None
        if isinstance(content.document, SnapshotReading):
            if newest:
                races = sorted(content.document.races)
                rows += await self._races(db, event, content.document, progress)
        else:
            rows += await self._document(db, event, content)
            if newest:
                rows += await self._rows_of(db, event, content.document)
            if event.resource == DESK_RESOURCE:
                rows += await self._desk_calls(db, event)
        if newest:
            await db.execute(
                sql.SQL(
                    "UPDATE {} SET sequence = %s, event_id = %s, races = %s, written_at = now()"
                    " WHERE source = %s AND resource = %s"
                ).format(self._table("pollerd_progress")),
                (event.sequence, event.event_id, _json(races), event.source, event.resource),
            )
        return rows

    async def _desk_calls(self, db: AsyncConnection[Any], event: Event) -> int:
        """The desk's calls into ``results``: ``winner`` and ``runoff`` of each race's top unit
        follow them (``ap_winner`` keeps AP's flag). The rows held of the source's queries are
        forgotten, so the next version compares them with the table again."""
        rows = 0
        for fact in event.election:
            if fact.by != "desk" or fact.type not in CALL_TYPES or fact.key.count(":") != 2:
                continue
            flag, _, listed = fact.state.partition(":")
            winners = listed.split(",") if listed else []
            state, race, race_type = fact.key.split(":")
            cursor = await db.execute(
                sql.SQL(
                    "UPDATE {} SET winner = (candidateid = ANY(%s) AND %s = 'X'),"
                    " runoff = (candidateid = ANY(%s) AND %s = 'R')"
                    " WHERE statepostal = %s AND raceid = %s AND racetypeid = %s"
                    " AND level IN ('state', 'national')"
                ).format(self._table(RESULTS.name)),
                (winners, flag, winners, flag, state, race, race_type),
            )
            rows += max(cursor.rowcount, 0)
        for place in [place for place in self._held if place[0] == event.source]:
            del self._held[place]
        return rows

    async def _progress(self, db: AsyncConnection[Any], event: Event) -> _Progress:
        """The newest version written for the resource, its row locked until the commit (so two
        deliveries of one resource, from two replicas say, are written one after the other)."""
        table = self._table("pollerd_progress")
        await db.execute(
            sql.SQL(
                "INSERT INTO {} (source, resource, sequence) VALUES (%s, %s, 0) ON CONFLICT DO NOTHING"
            ).format(table),
            (event.source, event.resource),
        )
        cursor = await db.execute(
            sql.SQL(
                "SELECT sequence, event_id, races FROM {} WHERE source = %s AND resource = %s FOR UPDATE"
            ).format(table),
            (event.source, event.resource),
        )
        row = await cursor.fetchone()
        assert row is not None
        return _Progress(int(row[0]), row[1], list(row[2] or []))

    async def _races(
        self, db: AsyncConnection[Any], event: Event, snapshot: SnapshotReading, progress: _Progress
    ) -> int:
        """elex's tables for the races this version changed, compared with what the sink knows
        the tables hold; when it does not know (the first version since start, or a version
        between not written here), every race the query has or had, compared in the database."""
        place = (event.source, event.resource)
        held = self._held.get(place)
        changed = (event.details or {}).get("changed_races")
        if (
            held is not None
            and held.event_id == progress.event_id
            and progress.sequence == event.sequence - 1
            and isinstance(changed, list)
        ):
            keys = {str(k) for k in changed}
            tables = await asyncio.to_thread(_published_tables, only_races(snapshot, keys), _calls(event))
            rows = 0
            for table, found in zip(ELEX, tables.lists(), strict=True):
                rows += await self._differences(
                    db, table, found, held.tables[table.name], races_of_keys(keys)
                )
            held.event_id = event.event_id
            return rows
        keys = set(snapshot.races) | set(progress.races)
        tables = await asyncio.to_thread(_published_tables, snapshot.document(), _calls(event))
        within = sorted(races_of_keys(keys))
        rows = 0
        known: dict[str, Hashes] = {}
        for table, found in zip(ELEX, tables.lists(), strict=True):
            rows += await sync(db, self._prefix, table, found, ("statepostal", "raceid"), within)
            known[table.name] = {
                race: row_hashes(values) for race, values in rows_by_race(table, found).items()
            }
        self._held[place] = HeldRows(event.event_id, known)
        return rows

    async def _differences(
        self,
        db: AsyncConnection[Any],
        table: Table,
        found: list[dict[str, Any]],
        held: Hashes,
        races: set[Race],
    ) -> int:
        """Send the rows of ``races`` that differ from what the table holds, delete the ones gone."""
        now = rows_by_race(table, found)
        changed: list[tuple[Any, ...]] = []
        gone: list[tuple[Any, ...]] = []
        for race in races:
            before, after = held.get(race, {}), now.get(race, {})
            changed += [values for key, values in after.items() if before.get(key) != hash(values)]
            gone += [key for key in before if key not in after]
            held[race] = row_hashes(after)
        return await apply(db, self._prefix, table, changed, gone)

    async def _document(self, db: AsyncConnection[Any], event: Event, content: _Payload) -> int:
        """The version as a row of ``documents`` (JSON as jsonb, else bytes)."""
        text = _json_text(content)
        body = content.raw if text is None else None
        table = self._table("documents")
        cursor = await db.execute(
            sql.SQL(
                "INSERT INTO {} (source, resource, sequence, sha256, event_id, detected_at, url,"
                " content_type, size, payload, body)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s) ON CONFLICT DO NOTHING"
            ).format(table),
            (
                event.source,
                event.resource,
                event.sequence,
                event.sha256,
                event.event_id,
                event.detected_at,
                event.url,
                event.content_type,
                event.size,
                text,
                body,
            ),
        )
        rows = max(cursor.rowcount, 0)
        if self._config.keep_versions is not None:
            cursor = await db.execute(
                sql.SQL(
                    "DELETE FROM {t} WHERE source = %s AND resource = %s AND sequence NOT IN"
                    " (SELECT sequence FROM {t} WHERE source = %s AND resource = %s"
                    " ORDER BY sequence DESC LIMIT %s)"
                ).format(t=table),
                (event.source, event.resource, event.source, event.resource, self._config.keep_versions),
            )
            rows += max(cursor.rowcount, 0)
        return rows

    async def _rows_of(self, db: AsyncConnection[Any], event: Event, document: Any) -> int:
        """An FSO file's cantons and a Democracy Club answer's ballots and candidates."""
        if document is None:
            return 0
        origin = {
            "source": event.source,
            "resource": event.resource,
            "sequence": event.sequence,
            "event_id": event.event_id,
        }
        cantons = [origin | row for row in canton_rows(event.resource, document)]
        rows = 0
        if cantons:
            rows += await sync(
                db, self._prefix, CANTONS, cantons, ("source", "resource"), [(event.source, event.resource)]
            )
        found = ballot_rows(event.resource, document)
        if found.ballots:
            rows += await sync(
                db, self._prefix, BALLOTS, [origin | b for b in found.ballots], unless_older="last_updated"
            )
            mine = await self._ballots_of(db, event, [b["ballot_paper_id"] for b in found.ballots])
            rows += await sync(
                db,
                self._prefix,
                CANDIDATES,
                [{"source": event.source} | c for c in found.candidates if c["ballot_paper_id"] in mine],
                ("source", "ballot_paper_id"),
                [(event.source, ballot) for ballot in sorted(mine)],
            )
        return rows

    async def _ballots_of(self, db: AsyncConnection[Any], event: Event, ballots: list[str]) -> set[str]:
        """Of these ballots, those this version is the newest word on (its row is this event's)."""
        cursor = await db.execute(
            sql.SQL(
                "SELECT ballot_paper_id FROM {} WHERE source = %s AND ballot_paper_id = ANY(%s)"
                " AND event_id = %s"
            ).format(self._table(BALLOTS.name)),
            (event.source, ballots, event.event_id),
        )
        return {str(row[0]) for row in await cursor.fetchall()}

    def _table(self, name: str) -> sql.Identifier:
        return sql.Identifier(self._prefix + name)


def _election_row(event: Event, fact: dict[str, Any]) -> dict[str, Any]:
    return {
        **fact,
        "source": event.source,
        "resource": event.resource,
        "sequence": event.sequence,
        "upstream_at": fact["at"],
        "detected_at": event.detected_at,
    }


def _read(payload: Path, size: int) -> bytes | None:
    """The payload's bytes, unless too large to hold (in a worker thread)."""
    return None if size > MAX_DOCUMENT_BYTES else payload.read_bytes()


def _json_text(content: _Payload) -> str | None:
    """A JSON payload as text for a jsonb column; None when it goes as bytes (no JSON, not UTF-8,
    or holding a NUL character, which jsonb cannot)."""
    if content.document is None or content.raw is None:
        return None
    try:
        text = content.raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    return None if "\\u0000" in text else text


def _json(value: Any) -> Any:
    return None if value is None else Jsonb(value)


def _calls(event: Event) -> dict[str, str]:
    """The races whose published call is the desk's (``desk_calls`` of an AP version)."""
    calls = (event.details or {}).get("desk_calls")
    return calls if isinstance(calls, dict) else {}


def _published_tables(document: dict[str, Any], calls: dict[str, str]) -> ElexTables:
    """elex's tables of a snapshot as published (the desk's calls in ``winner``), each result
    row with AP's own flag in ``ap_winner``."""
    tables = elex_tables(as_published(document, calls))
    for row in tables.results:
        row.setdefault("ap_winner", row["winner"])
    return tables


def _reason(exc: Exception) -> str:
    """What went wrong, in one line: the server's SQLSTATE and message, or the client's."""
    if isinstance(exc, psycopg.Error) and exc.sqlstate:
        return f"{exc.sqlstate} {exc.diag.message_primary or type(exc).__name__}"[:300]
    first = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {first[0] if first else ''}"[:300]
