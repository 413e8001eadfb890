"""What one AP change costs pollerd, against the floor, on two nights in one run.

(a) the simulated national night at ten times its counties; (b) the same with ten times the races
(ten times the snapshot) and the same number of races changing per step, so the deltas are the
same size. ``--size national``: 200 races x 300 reporting units (a 35 MB snapshot, about five
races a delta).

Per change, pollerd (a ``postgres`` sink, the daemon's own poll and delivery) and the floor (a
client that follows the same ``nextrequest`` chain: parse the delta, merge it into a dict, build
elex's rows of the changed races only and replace those rows) on the same pages, one after the
other at each step: AP's answer to rows visible (p50/p95), CPU ms, bytes added to the state
directory against the delta's own bytes, and the longest garbage-collector pause. AP runs in a
child process, so its CPU is nobody's.

Usage: python -m bench.ap_path [--smoke] [--size national]
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import psycopg
from aiohttp import web
from psycopg import sql

from bench.common import ap_source, arguments, peak_rss_mb, report
from pollerd.config import parse_config
from pollerd.daemon.app import Daemon
from pollerd.election.ap import race_key
from pollerd.results.elex import elex_tables
from pollerd.sim import SimServer
from pollerd.sim.ap import ApElection, ApServer
from pollerd.sinks.pg_tables import RACES, REPORTING_UNITS, RESULTS, migrate
from pollerd.sinks.postgres import PostgresSink
from pollerd.telemetry.logs import configure_logging
from tests.postgres import cluster

KEY = "bench-key"
ELEX = (RACES, REPORTING_UNITS, RESULTS)
NIGHTS = {  # name: (race factor, county factor, update probability)
    "a: national, counties x10": (1, 10, 0.05),
    "b: ten times the races": (10, 10, 0.005),
}
NATIONAL = {"national: 192 races x 300 units": (2, 40, 0.025)}


def _serve(pipe: Any, races: int, counties: int, probability: float, steps: int) -> None:
    """The AP stand-in, in a process of its own: ``POST /bench/advance`` moves the night a step,
    ``GET /bench/last`` says when the last answer was sent (perf_counter: one clock for both)."""
    election = ApElection(
        steps, national=True, update_probability=probability, county_factor=counties, race_factor=races
    )
    replay = ApServer(election, {KEY}, quota_per_minute=1_000_000, page_size=10_000)
    last = [0.0]

    async def advance(_request: web.Request) -> web.Response:
        election.advance()
        return web.Response(text=str(election.step))

    async def answered(_request: web.Request) -> web.Response:
        return web.Response(text=repr(last[0]))

    async def handle(request: web.Request) -> web.StreamResponse:
        response = await replay.handle(request)
        last[0] = time.perf_counter()
        return response

    async def run() -> None:
        app = web.Application()
        app.router.add_post("/bench/advance", advance)
        app.router.add_get("/bench/last", answered)
        app.router.add_route("*", "/{tail:.*}", handle)
        server = SimServer()
        pipe.send(await server.serve(app))
        await asyncio.Event().wait()

    asyncio.run(run())


def _floor(pipe: Any, base: str, url: str) -> None:
    """The floor client, in a process of its own (its CPU, memory and garbage are its own): one
    step per "step" asked, its figures sent back; on "stop", its snapshot's size and peak RSS."""

    async def run() -> None:
        floor = Floor(base)
        async with aiohttp.ClientSession() as session, await psycopg.AsyncConnection.connect(url) as db:
            while await asyncio.to_thread(pipe.recv) == "step":
                pipe.send(await floor.step(session, db))
        pipe.send((sum(len(orjson.dumps(r)) for r in floor.races.values()), peak_rss_mb()))

    asyncio.run(run())


class Floor:
    """The least work the job needs: follow the chain, merge the delta into a dict, build the
    changed races' rows and replace them."""

    def __init__(self, base: str) -> None:
        self.races: dict[str, Any] = {}
        self._next = f"{base}/v3/elections/2026-11-03?level=ru&format=json"

    async def step(
        self, session: aiohttp.ClientSession, db: psycopg.AsyncConnection[Any]
    ) -> dict[str, float]:
        started, cpu = time.perf_counter(), time.process_time()
        async with session.get(self._next, headers={"x-api-key": KEY}) as answer:
            body = await answer.read()
        document = orjson.loads(body)
        self._next = document["nextrequest"]
        changed = {}
        for race in document.get("races") or []:
            key = race_key(race)
            self.races[key] = race
            changed[key] = race
        if not changed:
            return {}
        tables = elex_tables({"electionDate": document.get("electionDate"), "races": list(changed.values())})
        keys = sorted({(r["statePostal"], r["raceID"]) for r in changed.values()})
        async with db.transaction():
            for table, found in zip(ELEX, tables.lists(), strict=True):
                target = sql.Identifier("floor_" + table.name)
                for state, race in keys:
                    await db.execute(
                        sql.SQL("DELETE FROM {} WHERE statepostal = %s AND raceid = %s").format(target),
                        (state, race),
                    )
                columns = sql.SQL(", ").join(map(sql.Identifier, table.names))
                async with db.cursor().copy(
                    sql.SQL("COPY {} ({}) FROM STDIN").format(target, columns)
                ) as copy:
                    for row in found:
                        values = table.values(row)
                        if values is not None:
                            await copy.write_row(values)
        return {
            "visible_s": time.perf_counter() - started,
            "cpu_s": time.process_time() - cpu,
            "delta_bytes": len(body),
        }


class GcPauses:
    """The collections while it is installed: when each began, and how long it took."""

    def __init__(self) -> None:
        self.seen: list[tuple[float, float]] = []
        self.longest = 0.0
        self._began = 0.0

    def __call__(self, phase: str, _info: dict[str, Any]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        else:
            self.seen.append((self._began, time.perf_counter() - self._began))

    def on_the_path(self, until: float) -> None:
        """Keep the longest of those that began before ``until`` (the rows were visible), the
        path of the change; the collection pollerd makes after a cycle is off it."""
        self.longest = max([self.longest, *(took for began, took in self.seen if began <= until)])
        self.seen = []


def state_files(folder: Path) -> dict[Path, int]:
    """Every file under the state directory (its payloads and database) and its size."""
    return {
        p: p.stat().st_size
        for p in folder.rglob("*")
        if p.is_file() and p.relative_to(folder).parts[0] != "tmp"
    }


def written(before: dict[Path, int], after: dict[Path, int]) -> int:
    """Bytes a step wrote to the state directory: its new files, and what the others grew by."""
    return sum(size if path not in before else max(0, size - before[path]) for path, size in after.items())


async def night(
    name: str, shape: tuple[int, int, float], steps: int, url: str, tmp: Path
) -> list[dict[str, Any]]:
    """One night: pollerd and the floor at each step, one after the other."""
    races, counties, probability = shape
    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(
        target=_serve, args=(child, races, counties, probability, steps), daemon=True
    )
    server.start()
    base = parent.recv()
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as db:
        await migrate(db, "floor_")
    state = tmp / "state"
    config = parse_config(
        {
            "daemon": {"state_dir": str(state), "metrics": "off", "log_level": "error"},
            "sources": [ap_source(base, KEY, ["db"], quota_per_minute=1_000_000)],
            "sinks": [{"name": "db", "kind": "postgres", "url": url, "prefix": "inc_"}],
        }
    )
    daemon = Daemon(config)
    await daemon.open()
    sink = daemon.sinks["db"]
    assert isinstance(sink, PostgresSink)
    pauses = GcPauses()
    ours: dict[str, list[float]] = {"visible_s": [], "cpu_s": [], "state_bytes": []}
    floor_run: dict[str, list[float]] = {"visible_s": [], "cpu_s": [], "delta_bytes": []}
    to_floor, floor_end = multiprocessing.Pipe()
    floor = multiprocessing.Process(target=_floor, args=(floor_end, base, url), daemon=True)
    floor.start()
    try:
        async with aiohttp.ClientSession() as session:
            for step in range(steps + 1):
                before, transactions = await asyncio.to_thread(state_files, state), sink.stats.transactions
                pauses.seen = []
                gc.callbacks.append(pauses)
                cpu = time.process_time()
                await daemon.run_once()
                spent = time.process_time() - cpu
                gc.callbacks.remove(pauses)
                if sink.stats.transactions > transactions and step > 0:
                    async with session.get(f"{base}/bench/last") as answer:
                        sent = float(await answer.text())
                    ours["visible_s"].append(sink.stats.committed_at - sent)
                    pauses.on_the_path(sink.stats.committed_at)
                    ours["cpu_s"].append(spent)
                    ours["state_bytes"].append(written(before, await asyncio.to_thread(state_files, state)))
                to_floor.send("step")
                found = await asyncio.to_thread(to_floor.recv)
                if found and step > 0:
                    for key, value in found.items():
                        floor_run[key].append(value)
                async with session.post(f"{base}/bench/advance"):
                    pass
            to_floor.send("stop")
            snapshot, floor_rss = await asyncio.to_thread(to_floor.recv)
            same = await same_results(url)
    finally:
        await daemon.close()
        server.kill()
        floor.kill()
    return [
        _figures(name, "pollerd", ours, snapshot, pauses.longest)
        | {"peak_rss_mb": peak_rss_mb(), "tables_equal": same},
        _figures(name, "floor", floor_run, snapshot, None) | {"peak_rss_mb": floor_rss},
    ]


async def same_results(url: str) -> bool:
    """Whether pollerd's results table and the floor's hold the same rows, votes and calls."""
    digests = []
    async with await psycopg.AsyncConnection.connect(url) as db:
        for prefix in ("inc_", "floor_"):
            cursor = await db.execute(
                sql.SQL(
                    "SELECT count(*), md5(string_agg(concat_ws(',', statepostal, id, votecount, winner),"
                    " ';' ORDER BY statepostal, id)) FROM {}"
                ).format(sql.Identifier(prefix + "results"))
            )
            digests.append(await cursor.fetchone())
    return digests[0] == digests[1]


def _figures(
    night_name: str, client: str, run: dict[str, list[float]], snapshot: int, gc_pause: float | None
) -> dict[str, Any]:
    visible = sorted(run["visible_s"])
    row: dict[str, Any] = {
        "night": night_name,
        "client": client,
        "snapshot_mb": round(snapshot / 1e6, 1),
        "changes": len(visible),
        "visible_ms_p50": 1000 * statistics.median(visible) if visible else None,
        "visible_ms_p95": 1000 * visible[int(0.95 * (len(visible) - 1))] if visible else None,
        "cpu_ms_p50": 1000 * statistics.median(run["cpu_s"]) if run["cpu_s"] else None,
    }
    if "state_bytes" in run:
        row["state_kb_per_change_mean"] = (
            statistics.mean(run["state_bytes"]) / 1000 if run["state_bytes"] else None
        )
        row["gc_pause_ms_max"] = 1000 * (gc_pause or 0.0)
    if "delta_bytes" in run:
        row["delta_kb_mean"] = statistics.mean(run["delta_bytes"]) / 1000 if run["delta_bytes"] else None
    return row


async def main(smoke: bool, size: str) -> int:
    """The nights; 1 if PostgreSQL is missing."""
    configure_logging("json", "error")
    steps = 6 if smoke else 60
    nights = NATIONAL if size == "national" else NIGHTS
    rows: list[dict[str, Any]] = []
    with contextmanager(cluster)() as running:
        if running is None:
            print("PostgreSQL (initdb, pg_ctl) is not installed here: this benchmark needs it")
            return 1
        for name, shape in nights.items():
            if smoke:
                shape = (1, 1, shape[2] * shape[0])
            with tempfile.TemporaryDirectory() as tmp:
                rows += await night(name, shape, steps, running.database(), Path(tmp))
            async with await psycopg.AsyncConnection.connect(running.database(), autocommit=True) as db:
                for prefix in ("inc_", "floor_"):
                    for table in (*ELEX, "documents", "election_events", "pollerd_progress"):
                        await db.execute(
                            sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(
                                sql.Identifier(prefix + (table if isinstance(table, str) else table.name))
                            )
                        )
    _ratios(rows)
    report(
        "ap_path",
        f"What one AP change costs ({steps} steps of 10 s): pollerd against the floor, per change",
        rows,
        {"smoke": smoke, "steps": steps, "size": size, "peak_rss_mb": peak_rss_mb()},
    )
    return 0


def _ratios(rows: list[dict[str, Any]]) -> None:
    """Each pollerd row gains its ratios to the floor of its night."""
    floors = {row["night"]: row for row in rows if row["client"] == "floor"}
    for row in rows:
        floor = floors.get(row["night"])
        if row["client"] != "pollerd" or floor is None:
            continue
        for key in ("visible_ms_p50", "cpu_ms_p50"):
            if row.get(key) and floor.get(key):
                row[key.replace("_p50", "_x_floor")] = round(row[key] / floor[key], 2)
        if row.get("state_kb_per_change_mean") and floor.get("delta_kb_mean"):
            row["state_x_delta"] = round(row["state_kb_per_change_mean"] / floor["delta_kb_mean"], 2)


if __name__ == "__main__":
    options = arguments(
        __doc__ or "",
        more=lambda p: p.add_argument("--size", choices=["default", "national"], default="default"),
    )
    sys.exit(asyncio.run(main(options.smoke, options.size)))
