"""AP results into PostgreSQL: the ``postgres`` sink (only the races that changed, only the rows
that differ, one transaction per change) against a full reload of every table at every change,
as elex-loader does (parse the whole snapshot, TRUNCATE and COPY every row, one transaction), in
the same run, on the same database.

The simulated national night (24 states, 4 races each, every race updated in 5% of the 10-second
steps), with ten times its counties by default so the results table has a real night's rows
(--counties 1, and --smoke: the simulator's own size). For each change: rows written, time spent in the
database, and the time from AP's answer to the rows being visible (for the sink, answer to
commit; for the reload, its parse, build and load after the same answer, its own download of the
whole document not counted).

Usage: python -m bench.pg_sink [--smoke]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from aiohttp import web
from psycopg import sql

from bench.common import ap_source, arguments, report
from pollerd.config import parse_config
from pollerd.core.payload import stored_json
from pollerd.daemon.app import Daemon
from pollerd.results.elex import elex_tables
from pollerd.sim import SimServer
from pollerd.sim.ap import ApElection, ApServer
from pollerd.sinks.pg_tables import RACES, REPORTING_UNITS, RESULTS, migrate
from pollerd.sinks.postgres import PostgresSink
from pollerd.telemetry.logs import configure_logging
from tests.postgres import cluster

KEY = "bench-key"
STEPS = 180  # 30 minutes at 10 s
COUNTIES = 10
ELEX = (RACES, REPORTING_UNITS, RESULTS)


class Answers:
    """When the AP replay last sent an answer (perf_counter)."""

    def __init__(self) -> None:
        self.last = 0.0

    async def stamp(self, _request: web.Request, _response: web.StreamResponse) -> None:
        self.last = time.perf_counter()


async def full_reload(url: str, snapshot_file: Path) -> dict[str, float]:
    """elex-loader's cycle on one snapshot: parse it, build every row, replace every table."""
    started = time.perf_counter()
    tables = await asyncio.to_thread(lambda: elex_tables(stored_json(snapshot_file)))
    built = time.perf_counter()
    async with await psycopg.AsyncConnection.connect(url) as db, db.transaction():
        await db.execute(
            sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(sql.Identifier("full_" + t.name) for t in ELEX))
        )
        rows = 0
        for table, found in zip(ELEX, tables.lists(), strict=True):
            columns = sql.SQL(", ").join(map(sql.Identifier, table.names))
            target = sql.Identifier("full_" + table.name)
            async with db.cursor().copy(sql.SQL("COPY {} ({}) FROM STDIN").format(target, columns)) as copy:
                for row in found:
                    values = table.values(row)
                    if values is not None:
                        await copy.write_row(values)
                        rows += 1
    done = time.perf_counter()
    return {"rows": rows, "db_s": done - built, "latency_s": done - started}


async def night(url: str, steps: int, counties: int, tmp: Path) -> list[dict[str, Any]]:
    """The night, the sink and the reload side by side; one row of figures for each."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as db:
        await migrate(db, "full_")
    server = SimServer()
    election = ApElection(steps=steps, national=True, update_probability=0.05, county_factor=counties)
    replay = ApServer(election, {KEY}, quota_per_minute=100_000, page_size=50)
    answers = Answers()
    app = replay.app()
    app.on_response_prepare.append(answers.stamp)
    base = await server.serve(app)
    config = parse_config(
        {
            "daemon": {"state_dir": f"{tmp}/state", "metrics": "off", "log_level": "error"},
            "sources": [ap_source(base, KEY, ["db", "out"], quota_per_minute=100_000)],
            "sinks": [
                {"name": "db", "kind": "postgres", "url": url, "prefix": "inc_"},
                {"name": "out", "kind": "filesystem", "root": f"{tmp}/out", "keep_versions": 2},
            ],
        }
    )
    daemon = Daemon(config)
    await daemon.open()
    sink = daemon.sinks["db"]
    assert isinstance(sink, PostgresSink)
    incremental: dict[str, list[float]] = {"rows": [], "db_s": [], "latency_s": []}
    reload: dict[str, list[float]] = {"rows": [], "db_s": [], "latency_s": []}
    try:
        for _ in range(steps + 1):
            rows, seconds, transactions = sink.stats.rows, sink.stats.seconds, sink.stats.transactions
            if await daemon.run_once() and sink.stats.transactions > transactions:
                incremental["rows"].append(sink.stats.rows - rows)
                incremental["db_s"].append(sink.stats.seconds - seconds)
                incremental["latency_s"].append(sink.stats.committed_at - answers.last)
                for key, value in (
                    await full_reload(url, tmp / "out" / "ap" / "all" / "latest.json")
                ).items():
                    reload[key].append(value)
            election.advance()
    finally:
        await daemon.close()
        await server.close()
    size = len(elex_tables(stored_json(tmp / "out" / "ap" / "all" / "latest.json")).results)
    return [
        _figures("postgres sink (changed races)", incremental, size),
        _figures("full reload", reload, size),
    ]


def _figures(name: str, run: dict[str, list[float]], size: int) -> dict[str, Any]:
    latency = sorted(run["latency_s"])
    return {
        "load": name,
        "results_rows": size,
        "changes": len(run["rows"]),
        "rows_written": int(sum(run["rows"])),
        "rows_per_change_p50": statistics.median(run["rows"]) if run["rows"] else None,
        "db_s_total": sum(run["db_s"]),
        "db_ms_p50": 1000 * statistics.median(run["db_s"]) if run["db_s"] else None,
        "visible_ms_p50": 1000 * statistics.median(latency) if latency else None,
        "visible_ms_p95": 1000 * latency[int(0.95 * (len(latency) - 1))] if latency else None,
    }


async def main(smoke: bool, counties: int) -> int:
    """One night; 1 if PostgreSQL is missing."""
    configure_logging("json", "error")
    steps = 30 if smoke else STEPS
    with contextmanager(cluster)() as running, tempfile.TemporaryDirectory() as tmp:
        if running is None:
            print("PostgreSQL (initdb, pg_ctl) is not installed here: this benchmark needs it")
            return 1
        rows = await night(running.database(), steps, counties, Path(tmp))
    report(
        "pg_sink",
        f"AP national night into PostgreSQL ({steps * 10 // 60} min, a poll every 10 s, "
        f"counties x{counties}): the postgres sink against a full reload at every change",
        rows,
        {"smoke": smoke, "steps": steps, "county_factor": counties},
    )
    return 0


if __name__ == "__main__":
    options = arguments(
        __doc__ or "",
        more=lambda p: p.add_argument(
            "--counties", type=int, help=f"times the counties (default {COUNTIES})"
        ),
    )
    counties = options.counties or (1 if options.smoke else COUNTIES)
    sys.exit(asyncio.run(main(options.smoke, counties)))
