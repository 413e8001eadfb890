"""Big file: one 500 MB resource that changes twice, served from disk by another process.

Reported per version: download (and hash) time, time to deliver it to the filesystem sink, and
this process's RSS growth over the whole run (peak minus before): downloads stream to disk in
64 KiB chunks, so it should stay flat.

Usage: python -m bench.bigfile [--smoke]
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import arguments, peak_rss_mb, report, rss_mb
from pollerd.config import parse_config
from pollerd.daemon.app import Daemon
from pollerd.telemetry.logs import configure_logging

CHUNK = 64 * 1024  # small: the writer runs in this process and must not skew its RSS


def write_version(path: Path, size: int, version: int) -> None:
    """``size`` bytes, different for each version (a seeded pattern, cheap to make)."""
    block = (f"version {version} ".encode() * (CHUNK // 10 + 1))[:CHUNK]
    with path.open("wb") as file:
        for _ in range(size // CHUNK):
            file.write(block)
    os.utime(path, (time.time() + version, time.time() + version))  # a new Last-Modified


async def main(smoke: bool) -> None:
    """Three versions (two changes) of one big file."""
    configure_logging("json", "error")
    size = (50 if smoke else 500) * 1024 * 1024
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "big.bin"
        await asyncio.to_thread(write_version, big, size, 0)
        server = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.serve_files", "--file", str(big), stdout=asyncio.subprocess.PIPE
        )
        assert server.stdout is not None
        port = int((await server.stdout.readline()).decode())
        config = parse_config(
            {
                "daemon": {"state_dir": f"{tmp}/state", "metrics": "off", "log_level": "error"},
                "sources": [
                    {
                        "name": "big",
                        "kind": "http",
                        "urls": [f"http://127.0.0.1:{port}/big.bin"],
                        "max_bytes": "1GiB",
                        "timeout": "10m",
                        "sinks": ["disk"],
                    }
                ],
                "sinks": [{"name": "disk", "kind": "filesystem", "root": f"{tmp}/out", "keep_versions": 1}],
            }
        )
        daemon = Daemon(config)
        await daemon.open()
        before = rss_mb()
        rows: list[dict[str, Any]] = []
        for version in range(3):
            if version:
                await asyncio.to_thread(write_version, big, size, version)
            started = time.monotonic()
            report_ = await daemon.pollers["big"].poll()
            fetched = time.monotonic() - started
            started = time.monotonic()
            await daemon.deliverer.drain()
            rows.append(
                {
                    "version": version + 1,
                    "size_mb": size / 1e6,
                    "changed": report_.changed,
                    "download_s": fetched,
                    "deliver_s": time.monotonic() - started,
                    "rss_mb": rss_mb(),
                }
            )
        growth = peak_rss_mb() - before
        await daemon.close()
        server.terminate()
        await server.wait()
    report(
        "bigfile",
        f"Big file: {size // 2**20} MiB, three versions; peak RSS growth {growth:.1f} MB",
        rows,
        {"smoke": smoke, "rss_growth_mb": growth},
    )


if __name__ == "__main__":
    asyncio.run(main(arguments(__doc__ or "").smoke))
