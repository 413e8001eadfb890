"""The desk's decisions survive what a night does to the processes: ``kill -9`` of the daemon
right after a decision, and, on PostgreSQL, a decision made from anywhere applied by the replica
that holds the source, and still standing after another replica takes the source over."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
from pathlib import Path
from typing import Any

import psycopg

from pollerd.cli import main
from pollerd.core.election import NUMBER_TYPES
from pollerd.sim.ap import ApServer
from tests.conftest import AP_KEY, wait_for
from tests.test_crash import pollerd
from tests.test_desk import race_of
from tests.test_replicas import holders, replica_file


def ap_tables(base: str) -> str:
    """An ``ap`` source holding every call, polled every 200 ms, into stdout."""
    return (
        f'[[sources]]\nname = "ap"\nkind = "ap"\napi = "{base}"\nelection_date = "2026-11-03"\n'
        f'api_key = "{AP_KEY}"\nsinks = ["out"]\ncalls = "hold"\ninterval = "200ms"\n'
        'quota_per_minute = 100000\n[[sources.queries]]\nname = "pennsylvania"\nstatePostal = "PA"\n\n'
        '[[sinks]]\nname = "out"\nkind = "stdout"\n'
    )


def sqlite_told(state_dir: Path, key: str) -> list[tuple[str, str | None]]:
    """(type, by) of a race's election events in a SQLite state, oldest first."""
    path = state_dir / "pollerd.sqlite3"
    if not path.exists():
        return []
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
        try:
            rows = db.execute("SELECT body FROM election_events WHERE source='ap' ORDER BY id").fetchall()
        except sqlite3.OperationalError:
            return []
    return _stories([json.loads(body) for (body,) in rows], key)


def database_told(url: str, key: str) -> list[tuple[str, str | None]]:
    """(type, by) of a race's election events in the PostgreSQL state, oldest first."""
    with psycopg.connect(url) as db:
        try:
            rows = db.execute("SELECT body::text FROM pollerd.election_events ORDER BY id").fetchall()
        except psycopg.errors.UndefinedTable:
            return []
    return _stories([json.loads(body) for (body,) in rows], key)


def _stories(events: list[dict[str, Any]], key: str) -> list[tuple[str, str | None]]:
    return [(e["type"], e.get("by")) for e in events if e["key"] == key and e["type"] not in NUMBER_TYPES]


def ap_holder(url: str) -> str | None:
    """The replica polling the AP sources (they are held by their key, together)."""
    return next((who for lease, who in holders(url).items() if lease.startswith("ap-key:")), None)


async def calls(*args: str) -> int:
    """``pollerd calls ...`` in this process (in a thread: it runs its own event loop)."""
    return await asyncio.to_thread(main, ["calls", *args])


async def stop(process: asyncio.subprocess.Process) -> None:
    """SIGTERM, and wait."""
    if process.returncode is None:
        process.terminate()
        await process.wait()


async def test_a_decision_survives_kill_9_of_the_daemon(
    ap_uncalled: tuple[ApServer, str], tmp_path: Path
) -> None:
    """A decision handed to the running daemon, answered, then ``kill -9``: after a restart it is
    still the desk's call (AP's retraction is a conflict) and it was announced once."""
    replay, base = ap_uncalled
    held = race_of(replay.election, "PA", "S")
    state = tmp_path / "state"
    toml = tmp_path / "pollerd.toml"
    toml.write_text(f'[daemon]\nstate_dir = "{state}"\nmetrics = "off"\n\n{ap_tables(base)}')
    daemon = await pollerd("run", "-c", str(toml))
    try:
        replay.election.call(held)
        await wait_for(lambda: sqlite_told(state, held) == [("call_pending", "ap")], 30)
        assert await calls("accept", "-c", str(toml), held) == 0
        assert sqlite_told(state, held)[-1] == ("race_called", "desk")
        os.kill(daemon.pid, signal.SIGKILL)
        await daemon.wait()
        replay.election.retract(held)
        daemon = await pollerd("run", "-c", str(toml))
        await wait_for(lambda: sqlite_told(state, held)[-1:] == [("call_conflict", "ap")], 30)
    finally:
        await stop(daemon)
    assert sqlite_told(state, held) == [
        ("call_pending", "ap"),
        ("race_called", "desk"),
        ("call_conflict", "ap"),
    ]


async def test_replicas_apply_the_desk_where_the_source_is_polled_and_after_a_takeover(
    ap_uncalled: tuple[ApServer, str], tmp_path: Path, postgres_url: str
) -> None:
    """Two replicas on PostgreSQL: ``pollerd calls accept`` (writing to the database, from no
    replica) is applied by the one that holds the source; that one is killed; the other takes
    the source over with the desk's call standing (AP's retraction: a conflict), and applies the
    next decision (a withdrawal). Each announced once."""
    replay, base = ap_uncalled
    held = race_of(replay.election, "PA", "S")
    configs = {name: replica_file(tmp_path, name, postgres_url, ap_tables(base)) for name in ("one", "two")}
    replicas = {name: await pollerd("run", "-c", str(path)) for name, path in configs.items()}
    try:
        await wait_for(lambda: ap_holder(postgres_url) is not None, 30)
        replay.election.call(held)
        await wait_for(lambda: database_told(postgres_url, held) == [("call_pending", "ap")], 30)
        assert await calls("accept", "-c", str(configs["one"]), held) == 0
        assert database_told(postgres_url, held)[-1] == ("race_called", "desk")

        victim = ap_holder(postgres_url)
        assert victim is not None
        survivor = "two" if victim == "one" else "one"
        os.kill(replicas[victim].pid, signal.SIGKILL)
        await replicas[victim].wait()
        await wait_for(lambda: ap_holder(postgres_url) == survivor, 30)
        replay.election.retract(held)
        await wait_for(lambda: database_told(postgres_url, held)[-1:] == [("call_conflict", "ap")], 30)

        assert await calls("withdraw", "-c", str(configs[victim]), held) == 0
        assert database_told(postgres_url, held) == [
            ("call_pending", "ap"),
            ("race_called", "desk"),
            ("call_conflict", "ap"),
            ("call_pending", "ap"),
            ("call_retracted", "desk"),
            ("call_conflict", "desk"),
        ] or database_told(postgres_url, held) == [
            ("call_pending", "ap"),
            ("race_called", "desk"),
            ("call_conflict", "ap"),
            ("call_retracted", "desk"),
            ("call_conflict", "desk"),
        ]
    finally:
        for process in replicas.values():
            await stop(process)
