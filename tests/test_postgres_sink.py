"""The postgres sink against a throwaway PostgreSQL cluster: AP results as elex's tables kept equal
to a from-scratch load after every delta, a reader never seeing half a delta, redelivery and
late versions changing nothing; FSO and Democracy Club payloads as documents and rows; election
events as rows; the schema made once under a prefix; the password in no error."""

from __future__ import annotations

import asyncio
import json
import threading
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from pollerd.config import PostgresSinkConfig, parse_config
from pollerd.core.model import Event
from pollerd.results.ballots import ballot_rows
from pollerd.results.cantons import canton_rows
from pollerd.results.elex import elex_tables
from pollerd.sim import SimServer
from pollerd.sim.ap import ApServer
from pollerd.sim.democracyclub import DcServer, DcWorld
from pollerd.sim.fso_content import SMALL
from pollerd.sim.night import ElectionNight
from pollerd.sinks import DeliveryFailed
from pollerd.sinks.filesystem import EVENT_SUFFIX
from pollerd.sinks.pg_tables import RACES, REPORTING_UNITS, RESULTS, SCHEMA_VERSION, Table
from pollerd.sinks.postgres import PostgresSink
from pollerd.versions.payload import Payload
from tests.conftest import DC_KEY, ap_source, dc_source, fso_source, one_source, opened

ELEX = (RACES, REPORTING_UNITS, RESULTS)


def pg_sink(url: str, **keys: Any) -> dict[str, Any]:
    """A postgres sink table named ``db``."""
    return {"name": "db", "kind": "postgres", "url": url, **keys}


def files_sink(root: Path) -> dict[str, Any]:
    """A filesystem sink named ``out`` (its versions and events are what the tests deliver again)."""
    return {"name": "out", "kind": "filesystem", "root": str(root), "events": ["versions", "election"]}


def versions(folder: Path) -> list[tuple[Event, Path]]:
    """The events and payloads a filesystem sink wrote for one resource, oldest first."""
    found = []
    for event_file in sorted(folder.glob(f"2*{EVENT_SUFFIX}")):
        event = Event.from_json(json.loads(event_file.read_bytes()), "json")
        found.append((event, event_file.with_name(event_file.name.removesuffix(EVENT_SUFFIX) + ".json")))
    return sorted(found, key=lambda item: item[0].sequence)


async def rows_of(url: str, table: Table, prefix: str = "") -> list[tuple[Any, ...]]:
    """Every row of a table, in key order."""
    query = sql.SQL("SELECT {} FROM {} ORDER BY {}").format(
        sql.SQL(", ").join(map(sql.Identifier, table.names)),
        sql.Identifier(prefix + table.name),
        sql.SQL(", ").join(map(sql.Identifier, table.key)),
    )
    async with await psycopg.AsyncConnection.connect(url) as db:
        return await (await db.execute(query)).fetchall()


def given(found: tuple[Event, Path]) -> tuple[Event, Payload]:
    """A version a filesystem sink wrote, as the deliverer hands it to a sink."""
    return found[0], Payload(found[1])


async def scratch_load(url: str, event: Event, payload: Path) -> PostgresSink:
    """A from-scratch load of one version: a second sink (prefix ``scratch_``), emptied first."""
    sink = PostgresSink(PostgresSinkConfig.model_validate(pg_sink(url, prefix="scratch_")), "test")
    await sink.deliver(event, Payload(payload))  # makes the tables
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as db:
        await db.execute(
            "TRUNCATE scratch_races, scratch_reporting_units, scratch_results, scratch_pollerd_progress"
        )
    await sink.deliver(event, Payload(payload))
    return sink


# One statement (one snapshot): state totals that disagree with their counties, and state units
# whose vote count disagrees with their candidates' rows. Every whole version of the simulated
# night has none; half a delta written would show some.
TORN = """
WITH counties AS (
    SELECT statepostal, raceid, candidateid, sum(votecount) AS votes
    FROM results WHERE level = 'county' GROUP BY 1, 2, 3),
totals AS (
    SELECT statepostal, raceid, sum(votecount) AS votes FROM results WHERE level = 'state' GROUP BY 1, 2)
SELECT
    (SELECT count(*) FROM results s JOIN counties c USING (statepostal, raceid, candidateid)
     WHERE s.level = 'state' AND s.votecount <> c.votes)
  + (SELECT count(*) FROM reporting_units u JOIN totals t USING (statepostal, raceid)
     WHERE u.level = 'state' AND u.votecount <> t.votes),
    (SELECT count(*) FROM results)
"""


class Reader(threading.Thread):
    """Reads the tables as fast as it can while the night is written; counts torn readings."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.readings, self.torn = url, 0, 0
        self.done = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as db:
            while not self.done.is_set():
                row = db.execute(TORN).fetchone()
                assert row is not None
                self.readings += 1
                self.torn += int(row[0] or 0)


async def test_the_ap_night_keeps_elex_tables_equal_to_a_fresh_load(
    ap: tuple[ApServer, str], tmp_path: Path, postgres_url: str
) -> None:
    """After every delta of the night the three tables equal a from-scratch load of the merged
    snapshot, row for row; a reader reading all along never sees half a delta (the write is
    slowed between tables to give it every chance); only changed rows are written."""
    replay, base = ap
    source = ap_source(base, ["db", "out"], queries=[{"name": "all", "level": "ru"}])
    config = one_source(tmp_path, source, [pg_sink(postgres_url), files_sink(tmp_path / "out")])
    async with opened(config) as daemon:
        assert await daemon.run_once()  # the first version makes the tables
        async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as db:
            await db.execute(
                "CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS"
                " $$ BEGIN PERFORM pg_sleep(0.05); RETURN NULL; END $$;"
                " CREATE TRIGGER slow AFTER INSERT OR UPDATE ON reporting_units"
                " FOR EACH STATEMENT EXECUTE FUNCTION slow()"
            )
        reader = Reader(postgres_url)
        reader.start()
        checked = 0
        try:
            while replay.election.step < replay.election.steps:
                replay.election.advance(2)
                if not await daemon.run_once():
                    continue
                event, payload = versions(tmp_path / "out" / "ap" / "all")[-1]
                scratch = await scratch_load(postgres_url, event, payload)
                await scratch.close()
                for table in ELEX:
                    assert await rows_of(postgres_url, table) == await rows_of(
                        postgres_url, table, "scratch_"
                    ), (table.name, event.sequence)
                checked += 1
        finally:
            reader.done.set()
            await asyncio.to_thread(reader.join)
        sink = daemon.sinks["db"]
        assert isinstance(sink, PostgresSink)
        stats = sink.stats
    snapshot = json.loads(payload.read_bytes())
    everything = elex_tables(snapshot)
    assert len(await rows_of(postgres_url, RESULTS)) == len(everything.results) > 0
    assert checked >= 8
    assert reader.readings > 50 and reader.torn == 0
    # incremental: far fewer rows written than a reload of every table at every version
    reload = checked * (len(everything.results) + len(everything.reporting_units) + len(everything.races))
    assert 0 < stats.rows < reload / 2, (stats.rows, reload)


def readme_section() -> str:
    """The README's paragraph on the postgres sink."""
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    return text.split("**`postgres`**", 1)[1].split("**Delivery guarantees.**", 1)[0]


async def test_the_readme_example_loads_and_its_query_runs(
    ap: tuple[ApServer, str], tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's sink table loads as written, and its SQL answers one leader per race."""
    monkeypatch.setenv("RESULTS_DATABASE_URL", postgres_url)
    section = readme_section()
    table = tomllib.loads(section.split("```toml\n", 1)[1].split("```", 1)[0])["sinks"][0]
    query = section.split("```sql\n", 1)[1].split("```", 1)[0]
    replay, base = ap
    source = ap_source(base, [table["name"]], queries=[{"name": "all", "level": "ru"}])
    async with opened(one_source(tmp_path, source, [table])) as daemon:
        assert await daemon.run_once()
        replay.election.advance(30)
        assert await daemon.run_once()
    async with await psycopg.AsyncConnection.connect(postgres_url) as db:
        leaders = await (await db.execute(query.encode())).fetchall()
        races = await (await db.execute("SELECT count(*) FROM elex_races")).fetchone()
    assert races is not None and len({(row[0], row[1], row[2]) for row in leaders}) == races[0] > 0


async def test_redelivery_changes_nothing_and_a_late_version_no_current_row(
    ap: tuple[ApServer, str], tmp_path: Path, postgres_url: str
) -> None:
    """The same event twice writes no row; an older version delivered after a newer one (a dead
    letter sent again) leaves the tables as the newer made them; a gap in the versions (one not
    delivered here) is closed by writing every race."""
    replay, base = ap
    source = ap_source(base, ["out"], queries=[{"name": "all", "level": "ru"}])
    async with opened(one_source(tmp_path, source, [files_sink(tmp_path / "out")])) as daemon:
        for _ in range(5):
            assert await daemon.run_once()
            replay.election.advance(8)
    found = versions(tmp_path / "out" / "ap" / "all")
    assert len(found) == 5
    sink = PostgresSink(PostgresSinkConfig.model_validate(pg_sink(postgres_url)), "test")
    try:
        await sink.deliver(*given(found[0]))
        await sink.deliver(*given(found[3]))  # a gap: versions 2 and 3 never came
        after_gap = [await rows_of(postgres_url, t) for t in ELEX]
        scratch = await scratch_load(postgres_url, *found[3])
        await scratch.close()
        assert after_gap == [await rows_of(postgres_url, t, "scratch_") for t in ELEX]
        written = sink.stats.rows
        await sink.deliver(*given(found[3]))
        assert sink.stats.rows == written
        await sink.deliver(*given(found[1]))  # late
        assert [await rows_of(postgres_url, t) for t in ELEX] == after_gap
        await sink.deliver(*given(found[4]))
        scratch = await scratch_load(postgres_url, *found[4])
        await scratch.close()
        assert [await rows_of(postgres_url, t) for t in ELEX] == [
            await rows_of(postgres_url, t, "scratch_") for t in ELEX
        ]
    finally:
        await sink.close()


async def test_fso_files_become_documents_cantons_and_election_events(
    tmp_path: Path, postgres_url: str
) -> None:
    """The FSO night: every version in ``documents`` (its JSON as jsonb), ``latest`` the newest
    of each file, one ``fso_cantons`` row per canton of each file's newest version, and the
    election events as the versions told them."""
    server = SimServer()
    election = ElectionNight(SMALL)
    await election.open(server)
    raw = {
        "daemon": {"state_dir": str(tmp_path / "state"), "metrics": "off"},
        "sources": [fso_source(election.api_url, ["db", "out"])],
        "sinks": [pg_sink(postgres_url, prefix="ch_"), files_sink(tmp_path / "out")],
    }
    try:
        async with opened(parse_config(raw)) as daemon:
            moment = election.content.reopened_from - timedelta(minutes=30)
            while not election.finished:
                election.advance_to(moment)
                await daemon.run_once()
                moment += timedelta(minutes=10)
    finally:
        await server.close()
    async with await psycopg.AsyncConnection.connect(postgres_url) as db:
        documents = await (await db.execute("SELECT count(*) FROM ch_documents")).fetchone()
        latest = await (await db.execute("SELECT resource, sequence, payload FROM ch_latest")).fetchall()
        cantons = await (
            await db.execute(
                "SELECT resource, canton, complete, municipalities_counted FROM ch_fso_cantons"
                " ORDER BY resource, canton"
            )
        ).fetchall()
        told = await (await db.execute("SELECT event_id, type FROM ch_election_events")).fetchall()
    folders = [p for p in (tmp_path / "out" / "wahlen").iterdir() if p.is_dir()]
    every = {folder.name: versions(folder) for folder in folders}
    assert documents is not None and documents[0] == sum(len(v) for v in every.values())
    newest = {name: found[-1] for name, found in every.items()}
    assert {(r, s) for r, s, _ in latest} == {(n, e.sequence) for n, (e, _) in newest.items()}
    for resource, _, payload in latest:
        assert payload == json.loads(newest[resource][1].read_bytes())
    expected = sorted(
        (e.resource, row["canton"], row["complete"], row["municipalities_counted"])
        for e, path in newest.values()
        for row in canton_rows(e.resource, json.loads(path.read_bytes()))
    )
    assert cantons == expected and len(cantons) > 26
    facts = {
        fact["event_id"]: fact["type"]
        for found in every.values()
        for event, _ in found
        for fact in event.election_events()
    }
    assert dict(told) == facts and "canton_reopened" in facts.values()


async def test_democracy_club_ballots_and_candidates(tmp_path: Path, postgres_url: str) -> None:
    """Democracy Club's timeline: a row per ballot (a cancellation and its replacement shown),
    a row per candidate (one added on the way), the newest word on each ballot kept."""
    server = SimServer()
    service = DcServer(DcWorld(elections=30), {DC_KEY}, firewall_limit=10_000)
    base = await server.serve(service.app())
    raw = {
        "daemon": {"state_dir": str(tmp_path / "state"), "metrics": "off"},
        "sources": [dc_source(base, ["db", "out"])],
        "sinks": [pg_sink(postgres_url), files_sink(tmp_path / "out")],
    }
    try:
        async with opened(parse_config(raw)) as daemon:
            await daemon.run_once()
            for _ in range(12):
                service.world.advance()
                await daemon.run_once()
    finally:
        await server.close()
    async with await psycopg.AsyncConnection.connect(postgres_url) as db:
        ballots: dict[str, bool] = dict(
            await (await db.execute("SELECT ballot_paper_id, cancelled FROM dc_ballots")).fetchall()
        )
        people = await (
            await db.execute("SELECT ballot_paper_id, name FROM dc_candidates ORDER BY 1, 2")
        ).fetchall()
    assert ballots["local.sandbox.hill.2026-05-07"] is True
    assert ballots["local.sandbox.hill.2026-05-21"] is False
    assert ("local.sandbox.harbour.2026-05-07", "Dora Maar") in people
    newest = {}
    for folder in (tmp_path / "out" / "uk").iterdir():
        event, path = versions(folder)[-1]
        for row in ballot_rows(event.resource, json.loads(path.read_bytes())).candidates:
            newest[(row["ballot_paper_id"], row["name"])] = True
    assert set(people) == set(newest)


async def test_two_sinks_make_the_tables_once_and_the_prefix_keeps_them_apart(
    tmp_path: Path, postgres_url: str
) -> None:
    """Two sinks starting together on one prefix migrate once; another prefix has its own tables;
    a schema newer than this pollerd's is refused."""
    payload = tmp_path / "p.json"
    payload.write_bytes(b'{"a": 1}')
    from tests.test_store_queries import event

    sinks = [
        PostgresSink(PostgresSinkConfig.model_validate(pg_sink(postgres_url, name=f"db{i}", prefix=p)), "t")
        for i, p in enumerate(("", "", "other_"))
    ]
    try:
        await asyncio.gather(*(s.deliver(event("r", 1, "a" * 64), Payload(payload)) for s in sinks))
    finally:
        for sink in sinks:
            await sink.close()
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as db:
        counts = [
            await (
                await db.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(p + "documents")))
            ).fetchone()
            for p in ("", "other_")
        ]
        assert counts == [(1,), (1,)]
        made = await (await db.execute("SELECT max(version) FROM pollerd_schema")).fetchall()
        assert made == [(SCHEMA_VERSION,)]
        await db.execute("UPDATE pollerd_schema SET version = 99")
    sink = PostgresSink(PostgresSinkConfig.model_validate(pg_sink(postgres_url)), "t")
    with pytest.raises(DeliveryFailed):
        await sink.deliver(event("r", 2, "b" * 64), Payload(payload))
    await sink.close()


async def test_the_password_is_in_no_error_and_bad_keys_are_refused(tmp_path: Path) -> None:
    """A database that cannot be reached fails the delivery (to be retried) with a reason that
    holds no password; a prefix that is no plain identifier is refused at start."""
    secret = "hunter2-pg-secret"
    password_file = tmp_path / "pw"
    password_file.write_text(secret + "\n")
    config = parse_config(
        {
            "daemon": {"state_dir": str(tmp_path / "state"), "metrics": "off"},
            "sources": [{"name": "f", "kind": "http", "urls": ["http://127.0.0.1:9/x"], "sinks": ["db"]}],
            "sinks": [
                pg_sink(
                    f"postgresql://u:{secret}@127.0.0.1:9/db",
                    password_file=str(password_file),
                    timeout="2s",
                )
            ],
        }
    )
    sink_config = config.sinks[0]
    assert isinstance(sink_config, PostgresSinkConfig)
    assert sink_config.password is not None and sink_config.password.get_secret_value() == secret
    assert secret in set(sink_config.secret_values())
    sink = PostgresSink(sink_config, "t")
    payload = tmp_path / "p.json"
    payload.write_bytes(b"{}")
    from tests.test_store_queries import event

    with pytest.raises(DeliveryFailed) as caught:
        await sink.deliver(event("r", 1, "a" * 64), Payload(payload))
    await sink.close()
    assert not caught.value.permanent and secret not in str(caught.value)
    with pytest.raises(Exception, match="prefix"):
        PostgresSinkConfig.model_validate(pg_sink("postgresql://h/db", prefix="x; DROP TABLE"))


async def test_documents_keep_json_as_jsonb_and_anything_else_as_bytes(
    tmp_path: Path, postgres_url: str
) -> None:
    """JSON goes to ``payload``; text, JSON in UTF-16 and JSON holding a NUL (which jsonb cannot
    hold) go to ``body`` byte for byte; ``keep_versions`` keeps the newest of each resource."""
    from tests.test_store_queries import event

    bodies = [b'{"a": 1}', b"plain, text", '{"a": 2}'.encode("utf-16"), b'{"a": "x\\u0000y"}', b'{"b": [1]}']
    sink = PostgresSink(PostgresSinkConfig.model_validate(pg_sink(postgres_url, keep_versions=4)), "t")
    try:
        for sequence, body in enumerate(bodies, start=1):
            payload = tmp_path / f"{sequence}.json"
            payload.write_bytes(body)
            await sink.deliver(event("r", sequence, f"{sequence:064d}"), Payload(payload))
    finally:
        await sink.close()
    async with await psycopg.AsyncConnection.connect(postgres_url) as db:
        rows = await (await db.execute("SELECT sequence, payload, body FROM documents ORDER BY 1")).fetchall()
        latest = await (await db.execute("SELECT sequence FROM latest")).fetchall()
    assert [(s, p, None if b is None else bytes(b)) for s, p, b in rows] == [
        (2, None, bodies[1]),
        (3, None, bodies[2]),
        (4, None, bodies[3]),
        (5, {"b": [1]}, None),
    ]
    assert latest == [(5,)]
