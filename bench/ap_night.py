"""AP: a simulated 30-minute election night at 10 s polling, pollerd against full-document polling.

Runs the simulator's AP replay (180 steps of 10 s), one daemon cycle per step, for each mode, and
prints requests made and bytes downloaded, next to a client that GETs the full document every
interval. Usage: python bench/ap_night.py
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from pollerd.app import Daemon
from pollerd.config import parse_config
from pollerd.logs import configure_logging
from pollerd.sim import SimServer
from pollerd.sim.ap import ApElection, ApServer

KEY = "bench-key"
STEPS = 180  # 30 minutes at 10 s


async def run(mode: str) -> dict[str, Any]:
    """One night with pollerd in ``mode``; the figures of it and of the naive client."""
    server = SimServer()
    replay = ApServer(ApElection(steps=STEPS), {KEY}, quota_per_minute=10_000, page_size=50)
    base = await server.serve(replay.app())
    with tempfile.TemporaryDirectory() as tmp:
        config = parse_config({
            "daemon": {"state_dir": f"{tmp}/state", "metrics": "off", "log_level": "error"},
            "sources": [{"name": "ap", "kind": "ap", "api": base, "election_date": "2026-11-03",
                         "api_key": KEY, "mode": mode, "quota_per_minute": 10_000,
                         "queries": [{"name": "all", "level": "ru"}], "sinks": ["out"]}],
            "sinks": [{"name": "out", "kind": "filesystem", "root": f"{tmp}/out"}],
        })
        daemon = Daemon(config)
        await daemon.open()
        naive_bytes = 0
        try:
            for _ in range(STEPS + 1):
                await daemon.run_once()
                races = replay.full_races({"level": "ru"})
                naive_bytes += len(json.dumps({"electionDate": "2026-11-03", "races": races}))
                replay.election.advance()
            registry = daemon.metrics.registry
            downloaded = registry.get_sample_value("pollerd_downloaded_bytes_total", {"source": "ap"})
            changes = registry.get_sample_value("pollerd_changes_total", {"source": "ap"})
            stored = await asyncio.to_thread(_tree_size, Path(tmp) / "out")
        finally:
            await daemon.close()
            await server.close()
    return {"mode": mode, "requests": len(replay.log), "downloaded": int(downloaded or 0),
            "changes": int(changes or 0), "written": stored, "naive_requests": STEPS + 1,
            "naive_bytes": naive_bytes}


def _tree_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


async def main() -> None:
    """Both modes, one line each."""
    configure_logging("json", "error")
    for mode in ("nextrequest", "etag"):
        figures = await run(mode)
        print(f"{figures['mode']:>11}: {figures['requests']} requests, {figures['downloaded']:,} bytes "
              f"downloaded, {figures['changes']} snapshot changes | full document every 10 s: "
              f"{figures['naive_requests']} requests, {figures['naive_bytes']:,} bytes", file=sys.stdout)


if __name__ == "__main__":
    asyncio.run(main())
