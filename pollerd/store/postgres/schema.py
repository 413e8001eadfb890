"""The PostgreSQL state: its schema (``pollerd``, beside whatever else the database holds) and
migrations, applied at start under an advisory lock so replicas starting together migrate once."""

from __future__ import annotations

from psycopg import AsyncConnection

SCHEMA_VERSION = 6
_LOCK = 0x706F6C6C  # "poll": the advisory lock every replica's migration takes

# Each step brings a database written by the version before up to date (1: the first).
_MIGRATIONS: dict[int, list[str]] = {
    1: [
        "CREATE TABLE pollerd.resources (source text NOT NULL, resource text NOT NULL,"
        " state jsonb NOT NULL, PRIMARY KEY (source, resource))",
        "CREATE TABLE pollerd.discoveries (source text PRIMARY KEY, resources jsonb NOT NULL,"
        " discovered_at double precision NOT NULL)",
        "CREATE TABLE pollerd.events (id bigserial PRIMARY KEY, event_id text NOT NULL UNIQUE,"
        " source text NOT NULL, resource text NOT NULL, sequence bigint NOT NULL, sha256 text NOT NULL,"
        " body jsonb NOT NULL, extension text NOT NULL, created_at double precision NOT NULL,"
        " size bigint NOT NULL, UNIQUE (source, resource, sequence))",
        "CREATE INDEX events_by_sha256 ON pollerd.events (sha256)",
        "CREATE TABLE pollerd.deliveries (event_id text NOT NULL REFERENCES pollerd.events (event_id),"
        " sink text NOT NULL, status text NOT NULL, attempts integer NOT NULL DEFAULT 0,"
        " next_attempt double precision NOT NULL, last_error text, updated_at double precision NOT NULL,"
        " PRIMARY KEY (event_id, sink))",
        "CREATE INDEX deliveries_by_sink ON pollerd.deliveries (sink, status)",
        "CREATE INDEX resources_by_sha256 ON pollerd.resources ((state->>'sha256'))",
        "CREATE TABLE pollerd.payloads (sha256 text NOT NULL, part integer NOT NULL,"
        " chunk bytea NOT NULL, PRIMARY KEY (sha256, part))",
    ],
    2: [
        "CREATE FUNCTION pollerd.clock() RETURNS double precision LANGUAGE sql VOLATILE"
        " AS 'SELECT extract(epoch FROM clock_timestamp())::double precision'",
        # who polls a source (or delivers to a sink) now: one holder, an epoch every takeover
        # raises, and a deadline on the database's clock (replicas' clocks never decide)
        "CREATE TABLE pollerd.leases (name text PRIMARY KEY, holder text NOT NULL, epoch bigint NOT NULL,"
        " acquired_at double precision NOT NULL, expires_at double precision NOT NULL)",
        "CREATE TABLE pollerd.replicas (replica text PRIMARY KEY, seen_at double precision NOT NULL,"
        " expires_at double precision NOT NULL)",
    ],
    3: [
        # requests made from a shared budget (an AP key, a Democracy Club host), by the budget's
        # digest: a replica taking over the sources that spend it counts what was spent before
        "CREATE TABLE pollerd.spends (budget text NOT NULL, spender text NOT NULL,"
        " settled_at double precision NOT NULL)",
        "CREATE INDEX spends_by_time ON pollerd.spends (settled_at)",
    ],
    4: [
        # election events, committed with the version that told them; by subject, for "what was
        # last announced about this race (canton, ballot)"
        "CREATE TABLE pollerd.election_events (id bigserial PRIMARY KEY, event_id text NOT NULL UNIQUE,"
        " version_event_id text NOT NULL REFERENCES pollerd.events (event_id), source text NOT NULL,"
        " resource text NOT NULL, type text NOT NULL, subject text NOT NULL, state text NOT NULL,"
        " body jsonb NOT NULL, created_at double precision NOT NULL)",
        "CREATE INDEX election_events_by_subject ON pollerd.election_events (source, subject, id)",
    ],
    5: [
        # an AP version kept as its change names the checkpoint it builds on
        "ALTER TABLE pollerd.events ADD COLUMN chain_from bigint",
    ],
    6: [
        # the desk's decisions (calls accepted, made, withdrawn; candidates' names), each kept
        # with who made it, applied by whichever replica holds the source
        "CREATE TABLE pollerd.desk_decisions (id bigserial PRIMARY KEY, source text NOT NULL,"
        " status text NOT NULL, body jsonb NOT NULL, created_at double precision NOT NULL)",
        "CREATE INDEX desk_decisions_by_source ON pollerd.desk_decisions (source, status, id)",
    ],
}


class SchemaTooNew(Exception):
    """The database was written by a newer pollerd."""


async def migrate(db: AsyncConnection[tuple[object, ...]]) -> int:
    """Create or bring the schema up to date (one replica at a time); the version it had."""
    async with db.transaction():
        await db.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
        await db.execute("CREATE SCHEMA IF NOT EXISTS pollerd")
        await db.execute(
            "CREATE TABLE IF NOT EXISTS pollerd.meta (key text PRIMARY KEY, value text NOT NULL)"
        )
        cursor = await db.execute("SELECT value FROM pollerd.meta WHERE key = 'schema_version'")
        row = await cursor.fetchone()
        version = int(str(row[0])) if row else 0
        if version > SCHEMA_VERSION:
            raise SchemaTooNew(f"the database was written by a newer pollerd (schema {version})")
        for step in range(version + 1, SCHEMA_VERSION + 1):
            for statement in _MIGRATIONS[step]:
                await db.execute(statement)
        await db.execute(
            "INSERT INTO pollerd.meta VALUES ('schema_version', %s)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (str(SCHEMA_VERSION),),
        )
    return version
