"""AP: a simulated 30-minute election night at 10 s polling, pollerd against full-document polling.

Runs the simulator's AP replay (180 steps of 10 s), one daemon cycle per step, for each mode, and
reports requests made and bytes downloaded, next to a client that GETs the full document every
interval. Two elections: the small, busy one of the tests (3 states, 12 races, each race updated
in 20% of the steps) and a national-sized one (24 states, 96 races, each updated in 5% of the
steps: every 3 minutes and a bit on average).

Usage: python -m bench.ap_night [--smoke]
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

from bench.common import ap_source, arguments, report
from pollerd.config import parse_config
from pollerd.daemon.app import Daemon
from pollerd.sim import SimServer
from pollerd.sim.ap import ApElection, ApServer
from pollerd.telemetry.logs import configure_logging

KEY = "bench-key"
STEPS = 180  # 30 minutes at 10 s


async def run(mode: str, steps: int, national: bool) -> dict[str, Any]:
    """One night with pollerd in ``mode``; the figures of it and of the naive client."""
    server = SimServer()
    election = ApElection(steps=steps, national=national, update_probability=0.05 if national else 0.2)
    replay = ApServer(election, {KEY}, quota_per_minute=10_000, page_size=50)
    base = await server.serve(replay.app())
    with tempfile.TemporaryDirectory() as tmp:
        config = parse_config(
            {
                "daemon": {"state_dir": f"{tmp}/state", "metrics": "off", "log_level": "error"},
                "sources": [ap_source(base, KEY, ["out"], mode=mode, quota_per_minute=10_000)],
                "sinks": [{"name": "out", "kind": "filesystem", "root": f"{tmp}/out"}],
            }
        )
        daemon = Daemon(config)
        await daemon.open()
        naive_bytes = 0
        try:
            for _ in range(steps + 1):
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
    return {
        "election": f"{len(election.races)} races",
        "mode": mode,
        "requests": len(replay.log),
        "bytes": int(downloaded or 0),
        "snapshot_changes": int(changes or 0),
        "full_document_requests": steps + 1,
        "full_document_bytes": naive_bytes,
        "bytes_ratio": naive_bytes / downloaded if downloaded else None,
        "written": stored,
    }


def _tree_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


async def main(smoke: bool) -> None:
    """Both modes, one row each."""
    configure_logging("json", "error")
    steps = 30 if smoke else STEPS
    rows = [
        await run(mode, steps, national) for national in (False, True) for mode in ("nextrequest", "etag")
    ]
    report(
        "ap",
        f"AP: {steps * 10 // 60}-minute night, a poll every 10 s, at reporting-unit "
        "level; full document every poll for comparison",
        rows,
        {"smoke": smoke},
    )


if __name__ == "__main__":
    asyncio.run(main(arguments(__doc__ or "").smoke))
