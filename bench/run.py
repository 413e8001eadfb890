"""Run every benchmark, one process each, and print how long each took.

Usage: python -m bench.run [--smoke]   (--smoke: about 30 s each at most, for CI)
"""

from __future__ import annotations

import subprocess
import sys
import time

from bench.common import arguments

SCENARIOS = (
    "night",
    "scale",
    "bigfile",
    "delivery",
    "ap_night",
    "ha",
    "replica_scale",
    "election_rules",
    "pg_sink",
    "ap_path",
)


def main(smoke: bool) -> int:
    """Each scenario in turn; exit 1 if one failed."""
    failed = []
    started = time.monotonic()
    for name in SCENARIOS:
        began = time.monotonic()
        result = subprocess.run(  # noqa: S603  # our own modules, by fixed names
            [sys.executable, "-m", f"bench.{name}", *(["--smoke"] if smoke else [])], check=False
        )
        print(f"[{name}: {time.monotonic() - began:.0f}s, exit {result.returncode}]", flush=True)
        if result.returncode != 0:
            failed.append(name)
    print(f"\nall scenarios: {time.monotonic() - started:.0f}s" + (f"; FAILED: {failed}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(arguments(__doc__ or "").smoke))
