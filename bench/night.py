"""Election night: pollerd and a naive poller side by side, each against its own simulator.

A window of the real 2023 trace is replayed time-compressed, with the S3 host failing (and the
move to the fallback host) and a DAM phase without validators inside the window. Each client runs
as its own process, polling every second. Reported per client: versions caught / published,
detection lag p50/p90 (trace seconds), requests, bytes, bytes per version caught, CPU, peak RSS.

Usage: python -m bench.night [--smoke] [--outage TRACE_SECONDS] [--phases N]

``--outage 20``: the FSO moves the files 20 trace seconds after S3 fails, before most files change
again, so a client that downloads every file again at its new URL pays for it
(``bytes_downloaded_again``).

``--phases 4``: each client runs four nights, its polls offset by 0, 1/4, 2/4 and 3/4 of an
interval from the trace's clock. The trace publishes in bursts, so one run's lag depends on where
the client's polls fall against them (a client that starts 0.3 s sooner moves its p50 by about
8 trace seconds): the mean over the phases is the figure to compare between versions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import arguments, cpu_seconds, peak_rss_mb, report
from pollerd.sim import SimServer
from pollerd.sim.fso_content import SMALL
from pollerd.sim.night import PACKAGE, ElectionNight, Script

DAY = datetime(2023, 10, 22, tzinfo=UTC)
INTERVAL = 1.0  # real seconds between polls, both clients


def window(smoke: bool, outage: float = 240.0) -> tuple[datetime, datetime, float, Script]:
    """(start, end, speed, script): the host failure and the DAM phase fall inside."""
    if smoke:
        start, end, speed = DAY.replace(hour=13, minute=30), DAY.replace(hour=14, minute=30), 180.0
    else:
        start, end, speed = DAY.replace(hour=12, minute=30), DAY.replace(hour=15, minute=30), 90.0
    span = end - start
    script = Script(
        primary_down=start + span * 0.3,
        to_fallback=start + span * 0.3 + timedelta(seconds=outage),
        added_at=start + span * 0.5,
        to_dam=start + span * 0.75,
    )
    return start, end, speed, script


async def run_client(argv: list[str], output: Path) -> asyncio.subprocess.Process:
    """Start a client process whose stdout (one JSON line per change) goes to ``output``."""
    return await asyncio.create_subprocess_exec(
        *argv, stdout=output.open("wb"), stderr=asyncio.subprocess.DEVNULL
    )


def pollerd_config(directory: Path, api: str) -> Path:
    """pollerd's config for one night: the fso source, events as JSON lines on stdout."""
    path = directory / "pollerd.toml"
    path.write_text(f"""[daemon]
state_dir = "{directory / "state"}"
metrics = "off"
log_level = "error"
[[sources]]
name = "night"
kind = "fso"
api = "{api}"
package = "{PACKAGE}"
interval = "{INTERVAL}s"
discovery_interval = "{2 * INTERVAL}s"
allowed_hosts = ["127.0.0.1"]
backoff_max = "3s"
sinks = ["events"]
[[sinks]]
name = "events"
kind = "stdout"
""")
    return path


def lifetimes(
    night: ElectionNight, start: datetime, end: datetime, outage: tuple[datetime, datetime]
) -> dict[str, float]:
    """How long each version published in the window could be fetched (trace seconds): while it
    was current, less the host outage (nobody can fetch anything then)."""
    lived = {}
    for shas in night.truth.values():
        for sha, following in zip(shas, [*shas[1:], None], strict=True):
            visible = night.visible_at[sha][0]
            if start <= visible <= end:
                until = min(night.visible_at[following][0] if following else end, end)
                overlap = max(timedelta(0), min(until, outage[1]) - max(visible, outage[0]))
                lived[sha] = (until - visible - overlap).total_seconds()
    return lived


def figures(
    name: str,
    night: ElectionNight,
    lines: list[dict[str, Any]],
    wall0: float,
    window_: tuple[datetime, datetime],
    speed: float,
    cpu: float,
    rss: float,
    outage: tuple[datetime, datetime],
    dam: datetime,
) -> dict[str, Any]:
    """One client's row."""
    origin, end = window_
    lived = lifetimes(night, origin, end, outage)
    detected: dict[str, float] = {}
    for line in lines:
        sha = line.get("sha256")
        when = line.get("detected_at")
        if isinstance(when, str):
            when = datetime.fromisoformat(when.replace("Z", "+00:00")).timestamp()
        if isinstance(sha, str) and isinstance(when, float | int):
            detected.setdefault(sha, float(when))
    published = {sha: night.visible_at[sha] for sha in lived}
    long_lived = {sha for sha, seconds in lived.items() if seconds >= INTERVAL * speed}
    lags, caught_bytes = [], 0
    for sha, (visible, size) in published.items():
        if sha in detected:
            trace_detected = origin + timedelta(seconds=(detected[sha] - wall0) * speed)
            lags.append(max(0.0, (trace_detected - visible).total_seconds()))
            caught_bytes += size
    requests = sum(len(host.log) for host in night.hosts)
    sent = sum(r.sent_bytes for host in night.hosts for r in host.log)
    # while validators exist (from the window's start to the DAM phase): file bytes against the
    # versions' own bytes (what a client fetched before the window is of versions before it)
    dam_wall = wall0 + (dam - origin).total_seconds() / speed
    file_bytes = sum(r.sent_bytes for host in night.hosts[1:] for r in host.log if wall0 <= r.at < dam_wall)
    version_bytes = sum(
        size for sha, (visible, size) in published.items() if sha in detected and visible < dam
    )
    refetched = refetched_bytes(night)
    quantiles = statistics.quantiles(lags, n=10) if len(lags) > 1 else [0.0] * 9
    return {
        "client": name,
        "caught": len(lags),
        "published": len(published),
        "caught_of_lived_1_interval": f"{len(long_lived & detected.keys())}/{len(long_lived)}",
        "lag_p50_s": statistics.median(lags) if lags else None,
        "lag_p90_s": quantiles[8],
        "requests": requests,
        "bytes": sent,
        "bytes_per_version": sent / len(lags) if lags else None,
        "bytes_vs_versions": sent / caught_bytes if caught_bytes else None,
        "file_bytes_vs_versions_with_validators": round(file_bytes / version_bytes, 3)
        if version_bytes
        else None,
        "bytes_downloaded_again": refetched,
        "cpu_s": cpu,
        "peak_rss_mb": rss,
    }


def refetched_bytes(night: ElectionNight) -> int:
    """Bytes of file bodies the client had downloaded before (the same MD5 ETag), from any host:
    what a host switch costs a client that downloads every file again at its new URL."""
    seen: set[str] = set()
    again = 0
    answers = sorted(
        (r for host in night.hosts[1:] for r in host.log if r.method == "GET" and r.status == 200 and r.etag),
        key=lambda r: r.at,
    )
    for record in answers:
        assert record.etag is not None
        if record.etag in seen:
            again += record.sent_bytes
        seen.add(record.etag)
    return again


async def night_for(
    client: str, directory: Path, smoke: bool, outage: float = 240.0, phase: float = 0.0
) -> dict[str, Any]:
    """Replay the window against one client, its polls ``phase`` of an interval off the trace's
    clock; its row."""
    start, end, speed, script = window(smoke, outage)
    server = SimServer()
    night = ElectionNight(SMALL, script=script)
    api = await night.open(server)
    night.advance_to(start)
    for host in night.hosts:
        host.log.clear()
    output = directory / f"{client}.jsonl"
    if client == "pollerd":
        argv = [sys.executable, "-m", "pollerd", "run", "-c", str(pollerd_config(directory, api))]
    else:
        argv = [
            sys.executable,
            "-m",
            "bench.naive",
            "--api",
            api,
            "--package",
            PACKAGE,
            "--interval",
            str(INTERVAL),
        ]
    process = await run_client(argv, output)
    await _first_poll(night, 30.0)
    await asyncio.sleep(phase * INTERVAL)
    wall0 = time.time()
    stop = asyncio.Event()
    await night.play(speed, stop, origin=start, until=end)
    await asyncio.sleep(3 * INTERVAL)  # the last versions still reach the client
    cpu, rss = cpu_seconds(process.pid), peak_rss_mb(process.pid)
    process.terminate()
    await process.wait()
    await server.close()
    lines = [json.loads(line) for line in output.read_text().splitlines() if line.startswith("{")]
    row = figures(
        client,
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
    row["interval_trace_s"] = INTERVAL * speed
    row["phase"] = phase
    return row


async def _first_poll(night: ElectionNight, limit: float) -> None:
    """Wait until the client has asked a file host something (it is up and polling), so each
    client's polls fall at the same offset from the trace's clock whatever its start-up time."""
    deadline = time.monotonic() + limit
    while not any(host.log for host in night.hosts[1:]) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.005)  # the simulator's request log has no event to wait on


async def main(smoke: bool, outage: float, phases: int) -> None:
    """Both clients, one after the other (the machine has two cores), at each phase; with more
    than one phase, a last row per client with the mean over the phases."""
    with tempfile.TemporaryDirectory() as tmp:
        runs: dict[str, list[dict[str, Any]]] = {"pollerd": [], "naive": []}
        for step in range(phases):
            for client, rows_of in runs.items():
                directory = Path(tmp) / f"{client}-{step}"
                directory.mkdir()
                rows_of.append(await night_for(client, directory, smoke, outage, step / phases))
    rows = [row for client_rows in runs.values() for row in client_rows]
    if phases > 1:
        rows += [_mean(client, client_rows) for client, client_rows in runs.items()]
    start, end, speed, _ = window(smoke, outage)
    ratio = runs["naive"][0]["bytes"] / runs["pollerd"][0]["bytes"] if runs["pollerd"][0]["bytes"] else None
    report(
        "night",
        f"Election night {start:%H:%M}-{end:%H:%M} UTC at {speed:g}x, poll every "
        f"{INTERVAL:g}s ({INTERVAL * speed:g} trace s), the files moved {outage:g} trace s after "
        f"S3 fails; naive/pollerd bytes = {ratio:.1f}",
        rows,
        {"smoke": smoke, "outage": outage, "phases": phases, "naive_over_pollerd_bytes": ratio},
    )


def _mean(client: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One client's figures averaged over the phases (the catch as its worst)."""
    numbers = ("lag_p50_s", "lag_p90_s", "bytes", "file_bytes_vs_versions_with_validators", "cpu_s")
    mean = {key: statistics.fmean(row[key] for row in rows) for key in numbers}
    worst = min(rows, key=lambda row: int(row["caught_of_lived_1_interval"].split("/")[0]))
    return {
        "client": f"{client} (mean)",
        "caught_of_lived_1_interval": worst["caught_of_lived_1_interval"],
    } | mean


def _phases(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--phases", type=int, default=1, help="nights per client, polls offset (default 1)")


if __name__ == "__main__":
    args = arguments(__doc__ or "", outage=True, more=_phases)
    asyncio.run(main(args.smoke, args.outage, args.phases))
