"""Scale: 1,000 and 10,000 resources on one host, 1% changing per interval.

The file host runs in its own process. pollerd (this process) polls every resource per cycle:
HEAD, and a GET for the 1% that changed. Reported: conditional probes per second and per CPU
second (one core), poll-cycle duration, event-loop lag (worst lateness of a 50 ms timer during
the cycles), RSS; and, in the same run against the same host, a bare aiohttp client doing the
same conditional HEADs (and a GET and sha256 of what changed): the floor, in probes per CPU
second.

Usage: python -m bench.scale [--smoke]
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
import tempfile
import time
from typing import Any

import aiohttp

from bench.common import arguments, cpu_seconds, report, rss_mb
from pollerd.config import parse_config
from pollerd.daemon.app import Daemon
from pollerd.telemetry.logs import configure_logging

CYCLES = 3


async def lag_monitor(worst: list[float], stop: asyncio.Event) -> None:
    """Record the worst lateness of a 50 ms sleep (a blocked loop shows up here)."""
    while not stop.is_set():
        expected = time.monotonic() + 0.05
        await asyncio.sleep(0.05)
        worst[0] = max(worst[0], time.monotonic() - expected)


async def one_size(count: int, every: float = 1.0) -> dict[str, Any]:
    """Poll ``count`` resources, 1% of them changing every ``every`` seconds: a first full
    cycle, then CYCLES conditional ones."""
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.serve_files",
        "--count",
        str(count),
        "--every",
        str(every),
        stdout=asyncio.subprocess.PIPE,
    )
    assert server.stdout is not None
    port = int((await server.stdout.readline()).decode())
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        config = parse_config(
            {
                "daemon": {
                    "state_dir": f"{tmp}/state",
                    "metrics": "off",
                    "log_level": "error",
                    "max_concurrency": 64,
                    "max_per_host": 64,
                },
                "sources": [
                    {
                        "name": "many",
                        "kind": "http",
                        "sinks": ["out"],
                        "urls": [f"{base}/r{n}.json" for n in range(count)],
                    }
                ],
                "sinks": [{"name": "out", "kind": "filesystem", "root": f"{tmp}/out"}],
            }
        )
        daemon = Daemon(config)
        await daemon.open()
        poller = daemon.pollers["many"]
        await poller.poll()  # the first cycle downloads everything
        worst, stop = [0.0], asyncio.Event()
        monitor = asyncio.create_task(lag_monitor(worst, stop))
        durations, cpus, changed = [], [], 0
        for _ in range(CYCLES):
            cpu, started = cpu_seconds(), time.monotonic()
            result = await poller.poll()
            durations.append(time.monotonic() - started)
            cpus.append(cpu_seconds() - cpu)
            changed += result.changed
            await asyncio.sleep(max(0.0, 1.0 - durations[-1]))
        stop.set()
        await monitor
        rss = rss_mb()
        await daemon.close()
    bare, bare_changes = await bare_client([f"{base}/r{n}.json" for n in range(count)])
    server.terminate()
    await server.wait()
    cycle = sum(durations) / len(durations)
    return {
        "resources": count,
        "changing": "1% a second" if every <= 1 else "none",
        "cycle_s": cycle,
        "probes_per_s": count / cycle,
        "probes_per_cpu_s": count * CYCLES / sum(cpus),
        "bare_probes_per_cpu_s": bare,
        "x_bare": round(count * CYCLES / sum(cpus) / bare, 2),
        "changes_per_cycle": changed / CYCLES,
        "bare_changes_per_cycle": bare_changes,
        "loop_lag_max_ms": worst[0] * 1000,
        "rss_mb": rss,
    }


async def bare_client(urls: list[str]) -> tuple[float, float]:
    """The floor: HEAD every URL (64 at a time), GET and hash what changed; probes per CPU second
    over CYCLES cycles after a first full one, and changes per cycle."""
    etags: dict[str, str | None] = {}
    changed = [0]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session:

        async def probe(url: str) -> None:
            async with session.head(url) as answer:
                etag = answer.headers.get("ETag")
            if url not in etags or etag != etags[url]:
                async with session.get(url) as answer:
                    hashlib.sha256(await answer.read()).hexdigest()
                etags[url] = etag
                changed[0] += 1

        await asyncio.gather(*(probe(url) for url in urls))
        spent, changed[0] = 0.0, 0
        for _ in range(CYCLES):
            cpu, started = cpu_seconds(), time.monotonic()
            await asyncio.gather(*(probe(url) for url in urls))
            spent += cpu_seconds() - cpu
            await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
    return len(urls) * CYCLES / spent, changed[0] / CYCLES


async def main(smoke: bool) -> None:
    """Both sizes (smaller ones in a smoke run)."""
    configure_logging("json", "error")
    sizes = (200, 1_000) if smoke else (1_000, 10_000)
    rows = [await one_size(count) for count in sizes]
    probes_alone = await one_size(sizes[-1], every=1e6)  # nothing changes: the probes alone
    probes_alone["rss_mb"] = None  # the same process after the other sizes: not its own figure
    rows.append(probes_alone)
    report(
        "scale",
        "Scale: one host, 1% of resources changing a second, or none (file host in another process)",
        rows,
        {"smoke": smoke},
    )


if __name__ == "__main__":
    asyncio.run(main(arguments(__doc__ or "").smoke))
