"""What every benchmark shares: arguments, process figures, a printed table and a JSON file."""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def arguments(
    description: str, outage: bool = False, more: Callable[[argparse.ArgumentParser], Any] | None = None
) -> argparse.Namespace:
    """``--smoke``: a quick run that only proves the script works (CI); ``--outage``: (with
    ``outage``) how long the S3 host is down before the FSO moves the files, in trace seconds;
    ``more``: adds a scenario's own options."""
    parser = argparse.ArgumentParser(description=description)
    if more is not None:
        more(parser)
    parser.add_argument("--smoke", action="store_true", help="a short run (about 30 s)")
    if outage:
        parser.add_argument(
            "--outage",
            type=float,
            default=240.0,
            help="trace seconds between the S3 failure and the move (default 240)",
        )
    return parser.parse_args()


def ap_source(base: str, key: str, sinks: list[str], **keys: Any) -> dict[str, Any]:
    """The ``ap`` source table the AP benchmarks poll (one query, ``all``, at reporting-unit level)."""
    table = {
        "name": "ap",
        "kind": "ap",
        "api": base,
        "election_date": "2026-11-03",
        "api_key": key,
        "queries": [{"name": "all", "level": "ru"}],
    }
    return table | {"sinks": sinks, **keys}


def rss_mb(pid: int | None = None) -> float:
    """Resident memory of a process now (MB)."""
    statm = Path(f"/proc/{pid or os.getpid()}/statm").read_text().split()
    return int(statm[1]) * resource.getpagesize() / 1e6


def peak_rss_mb(pid: int | None = None) -> float:
    """Peak resident memory of a process (MB, VmHWM)."""
    for line in Path(f"/proc/{pid or os.getpid()}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1000
    return 0.0


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid or os.getpid()}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def report(name: str, title: str, rows: list[dict[str, Any]], extra: dict[str, Any] | None = None) -> None:
    """Print ``rows`` as a table and write them (with ``extra``) to bench/results/<name>.json."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    print(f"\n{title}")
    print("| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells:
        print("| " + " | ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) + " |")
    RESULTS.mkdir(exist_ok=True)
    document = {
        "name": name,
        "title": title,
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpus": os.cpu_count(),
        "rows": rows,
        **(extra or {}),
    }
    (RESULTS / f"{name}.json").write_text(json.dumps(document, indent=2) + "\n")


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return "" if value is None else str(value)
