"""Election night with three replicas on one PostgreSQL, the active one killed at the host switch,
beside a single instance (SQLite) in the same run.

Each replica is its own ``pollerd run`` process; the night's one FSO source and its sink are two
leases, so one replica polls, one delivers, one waits. At the moment S3 fails, the replica polling
the source is killed (``kill -9``); another takes its lease when it expires. Reported per setup:
versions caught / published, detection lag p50/p90 (trace seconds), duplicates delivered (lines
with an event id seen before), versions announced under a second event id, and the takeover time
(real seconds from the kill until another replica holds the lease).

Usage: python -m bench.ha [--smoke]
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

from bench.common import arguments, cpu_seconds, peak_rss_mb, report
from bench.night import INTERVAL, figures, night_for, pollerd_config, run_client, window
from pollerd.sim import SimServer
from pollerd.sim.fso_content import SMALL
from pollerd.sim.night import ElectionNight
from tests.postgres import cluster

LEASE_TTL = 3.0  # real seconds: the night runs 90-180 times faster than real time
REPLICAS = ("r1", "r2", "r3")


def replica_config(directory: Path, api: str, database: str, name: str) -> Path:
    """The night's pollerd config, on PostgreSQL, as replica ``name``."""
    own = directory / name  # each replica its own state_dir (temporary files; the state is shared)
    own.mkdir(exist_ok=True)
    base = pollerd_config(own, api).read_text()
    extra = f'database = "{database}"\nreplica = "{name}"\nlease_ttl = "{LEASE_TTL:g}s"\n'
    path = directory / f"{name}.toml"
    path.write_text(base.replace("[daemon]\n", f"[daemon]\n{extra}", 1))
    return path


def holder(database: str, lease: str) -> str | None:
    """Who holds ``lease`` now (None: nobody, or no schema yet)."""
    try:
        with psycopg.connect(database) as db:
            row = db.execute(
                "SELECT holder FROM pollerd.leases WHERE name = %s AND expires_at > pollerd.clock()", (lease,)
            ).fetchone()
    except psycopg.Error:
        return None
    return None if row is None else str(row[0])


async def replicas_night(directory: Path, database: str, smoke: bool) -> dict[str, Any]:
    """The night against three replicas, the source's holder killed when S3 fails."""
    start, end, speed, script = window(smoke)
    server = SimServer()
    night = ElectionNight(SMALL, script=script)
    api = await night.open(server)
    night.advance_to(start)
    for host in night.hosts:
        host.log.clear()
    argv = [sys.executable, "-m", "pollerd", "run", "-c"]
    processes = {}
    for name in REPLICAS:
        config = replica_config(directory, api, database, name)
        processes[name] = await run_client([*argv, str(config)], directory / f"{name}.jsonl")
    await until(lambda: holder(database, "source:night") is not None)
    wall0 = time.time()
    stop = asyncio.Event()
    playing = asyncio.create_task(night.play(speed, stop, origin=start, until=end))
    kill_at = wall0 + (script.primary_down - start).total_seconds() / speed
    await asyncio.sleep(max(0.0, kill_at - time.time()))
    victim = holder(database, "source:night")
    assert victim is not None
    os.kill(processes[victim].pid, signal.SIGKILL)
    killed = time.monotonic()
    await until(lambda: holder(database, "source:night") not in (None, victim))
    takeover = time.monotonic() - killed
    await playing
    await asyncio.sleep(3 * INTERVAL)
    cpu = sum(cpu_seconds(p.pid) for n, p in processes.items() if n != victim)
    rss = max(peak_rss_mb(p.pid) for n, p in processes.items() if n != victim)
    for name, process in processes.items():
        if name != victim:
            process.terminate()
        await process.wait()
    await server.close()
    lines = [line for name in REPLICAS for line in events(directory / f"{name}.jsonl")]
    row = figures(
        "pollerd x3 (PostgreSQL)",
        night,
        lines,
        wall0,
        (start, end),
        speed,
        cpu,
        rss,
        (script.primary_down, script.to_fallback),
        script.to_dam,
    )
    row.update(delivery_figures(lines), takeover_s=round(takeover, 2), lease_ttl_s=LEASE_TTL)
    return row


async def until(condition: Callable[[], bool], timeout: float = 120.0) -> None:
    """Wait for a condition outside this process (the database's leases); fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not reached within {timeout:g} s")
        await asyncio.sleep(0.05)


def events(output: Path) -> list[dict[str, Any]]:
    """The JSON event lines a client printed."""
    return [json.loads(line) for line in output.read_text().splitlines() if line.startswith("{")]


def delivery_figures(lines: list[dict[str, Any]]) -> dict[str, int]:
    """Duplicates delivered (the same event id again: allowed) and versions announced under a
    second event id (never allowed)."""
    ids = Counter(str(line["event_id"]) for line in lines)
    per_version: dict[tuple[str, str], set[str]] = {}
    for line in lines:
        per_version.setdefault((str(line["resource"]), str(line["sha256"])), set()).add(str(line["event_id"]))
    return {
        "duplicates_delivered": sum(count - 1 for count in ids.values()),
        "versions_under_two_ids": sum(1 for found in per_version.values() if len(found) > 1),
    }


async def single_night(directory: Path, smoke: bool) -> dict[str, Any]:
    """The same night against one instance on SQLite (nothing killed)."""

    row = await night_for("pollerd", directory, smoke)
    lines = [
        json.loads(line)
        for line in (directory / "pollerd.jsonl").read_text().splitlines()
        if line.startswith("{")
    ]
    row["client"] = "pollerd x1 (SQLite)"
    row.update(delivery_figures(lines), takeover_s=None, lease_ttl_s=None)
    return row


async def main(smoke: bool) -> int:
    """Both setups, one after the other (the machine has two cores); 1 if PostgreSQL is missing."""
    with contextmanager(cluster)() as running, tempfile.TemporaryDirectory() as tmp:
        if running is None:
            print("PostgreSQL (initdb, pg_ctl) is not installed here: the HA benchmark needs it")
            return 1
        root = Path(tmp)
        (root / "one").mkdir()
        (root / "three").mkdir()
        single = await single_night(root / "one", smoke)
        rows = [single, await replicas_night(root / "three", running.database(), smoke)]
    start, end, speed, _ = window(smoke)
    report(
        "ha",
        f"Election night {start:%H:%M}-{end:%H:%M} UTC at {speed:g}x: one instance, and three replicas "
        f"with the polling one killed when S3 fails (lease_ttl {LEASE_TTL:g} s, poll every {INTERVAL:g} s)",
        rows,
        {"smoke": smoke},
    )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(arguments(__doc__ or "").smoke)))
