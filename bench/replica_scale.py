"""Scale across replicas: 30,000 resources over three replica processes on one PostgreSQL,
against 10,000 on one replica, 0.1% of them changing every second.

The files are served by another process (``bench.serve_files``), a thousand to a source, so the
sources' leases spread over the replicas. Each replica polls what it holds as fast as it can
(interval 200 ms, 64 requests at a time); once every resource has been fetched once, the figures
are taken over a window: probes per second in all and per replica, probes per replica CPU second,
the time a replica takes to probe all it holds once (its cycle), and PostgreSQL's statements and
transactions per probe (``pg_stat_statements``, ``pg_stat_database``). The machine's cores are
shared by the replicas, the file host and PostgreSQL: ``cores`` says how many there were.

Usage: python -m bench.replica_scale [--smoke]
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import psycopg

from bench.common import arguments, cpu_seconds, report
from bench.ha import until
from tests.postgres import cluster

PER_SOURCE = 1_000
CHANGING = 0.001  # of the files, every second: election feeds change a few files at a time
WINDOW = 20.0  # seconds measured, once warm (a smoke run: 5)


def replica_config(directory: Path, name: str, database: str, base: str, sources: int, port: int) -> Path:
    """Replica ``name``'s config: ``sources`` http sources of PER_SOURCE files each."""
    tables = "".join(
        f'[[sources]]\nname = "s{s}"\nkind = "http"\ninterval = "200ms"\nsinks = ["out"]\nurls = ['
        + ", ".join(f'"{base}/r{s * PER_SOURCE + n}.json"' for n in range(PER_SOURCE))
        + "]\n"
        for s in range(sources)
    )
    path = directory / f"{name}.toml"
    path.write_text(
        f'[daemon]\nstate_dir = "{directory / name}"\nmetrics = "127.0.0.1:{port}"\nlog_level = "error"\n'
        f'database = "{database}"\nreplica = "{name}"\nmax_concurrency = 64\nmax_per_host = 64\n'
        f'{tables}[[sinks]]\nname = "out"\nkind = "stdout"\n'
    )
    return path


async def probes(session: aiohttp.ClientSession, port: int) -> float:
    """The resource polls a replica has made (``pollerd_polls_total``, every source)."""
    async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
        text = await response.text()
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("pollerd_polls_total{")
    )


def database_work(database: str) -> tuple[int, int]:
    """(statements, transactions) the database has run so far."""
    with psycopg.connect(database) as db:
        statements = db.execute(
            "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE dbid ="
            " (SELECT oid FROM pg_database WHERE datname = current_database())"
        ).fetchone()
        transactions = db.execute(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    assert statements is not None and transactions is not None
    return int(statements[0]), int(transactions[0])


def leases_by_holder(database: str) -> dict[str, int]:
    """Replica -> the source leases it holds now."""
    try:
        with psycopg.connect(database) as db:
            rows = db.execute(
                "SELECT holder, count(*) FROM pollerd.leases WHERE name LIKE 'source:%'"
                " AND expires_at > pollerd.clock() GROUP BY holder"
            ).fetchall()
    except psycopg.Error:
        return {}
    return {str(holder): int(count) for holder, count in rows}


def resources_fetched(database: str) -> int:
    """Resources with a first version recorded."""
    with psycopg.connect(database) as db:
        row = db.execute("SELECT count(*) FROM pollerd.events WHERE sequence = 1").fetchone()
    return 0 if row is None else int(row[0])


async def one_setup(
    replicas: int, sources: int, database: str, directory: Path, window: float
) -> dict[str, Any]:
    """``sources`` sources over ``replicas`` replicas: the figures of one window, once warm."""
    count = sources * PER_SOURCE
    server = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "bench.serve_files", "--count", str(count), "--fraction", str(CHANGING)),
        stdout=asyncio.subprocess.PIPE,
    )
    assert server.stdout is not None
    base = f"http://127.0.0.1:{int((await server.stdout.readline()).decode())}"
    with psycopg.connect(database, autocommit=True) as db:
        db.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    ports = {f"r{n + 1}": 9300 + 10 * replicas + n for n in range(replicas)}
    processes = {}
    for name, port in ports.items():
        config = replica_config(directory, name, database, base, sources, port)
        processes[name] = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "pollerd", "run", "-c", str(config), stdout=asyncio.subprocess.DEVNULL
        )
    try:
        started = time.monotonic()
        await until(lambda: spread(leases_by_holder(database), sources, replicas), 300)
        await until(lambda: resources_fetched(database) == count, 900)
        warm_up = time.monotonic() - started
        return await measure(processes, ports, database, window, warm_up)
    finally:
        for process in processes.values():
            process.terminate()
            await process.wait()
        server.terminate()
        await server.wait()


def spread(held: dict[str, int], sources: int, replicas: int) -> bool:
    """Every source's lease is held, none beyond a fair share (ceil(leases / replicas), the
    sink's lease counted)."""
    return sum(held.values()) == sources and max(held.values()) <= -(-(sources + 1) // replicas)


async def measure(
    processes: dict[str, asyncio.subprocess.Process],
    ports: dict[str, int],
    database: str,
    window: float,
    warm_up: float,
) -> dict[str, Any]:
    """Probes, CPU and database work over ``window`` seconds."""
    async with aiohttp.ClientSession() as session:
        before = {name: await probes(session, port) for name, port in ports.items()}
        cpu_before = {name: cpu_seconds(p.pid) for name, p in processes.items()}
        work_before, began = database_work(database), time.monotonic()
        await asyncio.sleep(window)
        after = {name: await probes(session, port) for name, port in ports.items()}
        work_after, span = database_work(database), time.monotonic() - began
        cpu = {name: cpu_seconds(p.pid) - cpu_before[name] for name, p in processes.items()}
    done = {name: after[name] - before[name] for name in ports}
    total = sum(done.values())
    held = leases_by_holder(database)
    per_replica = [done[name] / span for name in ports]
    return {
        "replicas": len(ports),
        "resources": sum(held.values()) * PER_SOURCE,
        "probes_per_s": total / span,
        "per_replica_probes_per_s": " / ".join(f"{rate:,.0f}" for rate in per_replica),
        "probes_per_replica_cpu_s": total / sum(cpu.values()),
        "cycle_s": max(held.get(name, 0) * PER_SOURCE / max(done[name] / span, 1e-9) for name in ports),
        "pg_statements_per_probe": (work_after[0] - work_before[0]) / total,
        "pg_transactions_per_probe": (work_after[1] - work_before[1]) / total,
        "warm_up_s": warm_up,
        "cores": os.cpu_count(),
    }


async def main(smoke: bool) -> int:
    """One replica with a third of the resources, then three with all of them."""
    setups = ((1, 1), (3, 3)) if smoke else ((1, 10), (3, 30))
    window = 5.0 if smoke else WINDOW
    with contextmanager(cluster)(("shared_preload_libraries=pg_stat_statements",)) as running:
        if running is None:
            print("PostgreSQL (initdb, pg_ctl) is not installed here: this benchmark needs it")
            return 1
        rows = []
        with tempfile.TemporaryDirectory() as tmp:
            for replicas, sources in setups:
                directory = Path(tmp) / f"x{replicas}"
                directory.mkdir()
                rows.append(await one_setup(replicas, sources, running.database(), directory, window))
    rows[1]["throughput_vs_one"] = rows[1]["probes_per_s"] / rows[0]["probes_per_s"]
    report(
        "replica_scale",
        f"Scale across replicas on one PostgreSQL: {rows[0]['resources']:,} resources on one replica, "
        f"{rows[1]['resources']:,} over three; 0.1% changing per second; {window:g} s measured once warm",
        rows,
        {"smoke": smoke},
    )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(arguments(__doc__ or "").smoke)))
