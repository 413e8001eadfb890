"""Election rules: what reading the election events costs per committed version, for the biggest
files of the night (the FSO's National Council files at full size) and a national-sized AP
snapshot, against the time the same version's bytes take to hash (what detection costs anyway).

Per file: its size, the milliseconds to parse the previous and the new version and run the rules
(the recorder does this in a worker thread before each commit), and the events found.

Usage: python -m bench.election_rules [--smoke]
"""

from __future__ import annotations

import hashlib
import json
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.common import arguments, report
from pollerd.core.election import Rules
from pollerd.election.dc import dc_facts
from pollerd.election.fso import fso_facts
from pollerd.polling.recorder import _derive
from pollerd.sim.ap_election import ApElection
from pollerd.sim.fso_content import COUNT_STARTS, FULL, ElectionContent
from pollerd.sources.ap import ap_rules
from pollerd.sources.ap_merge import Snapshot

FSO_FILES = (
    ("parties", "sd-t-17.02-NRW2023-parteien.json"),
    ("candidates", "sd-t-17.02-NRW2023-kandidierende.json"),
    ("turnout", "sd-t-17.02-NRW2023-wahlbeteiligung.json"),
)


def versions_fso(kind: str, count: int) -> list[bytes]:
    """``count`` versions of one full-size FSO file, 10 minutes apart from 16:00 (cantons finishing)."""
    content = ElectionContent(FULL)
    start = COUNT_STARTS + timedelta(hours=6)
    return [content.render(kind, start + timedelta(minutes=10 * n)) for n in range(count)]


def versions_ap(count: int) -> list[bytes]:
    """``count`` snapshots of the national-sized AP night at reporting-unit level, 10 steps apart."""
    election = ApElection(national=True)
    bodies = []
    for _ in range(count):
        election.advance(10)
        snapshot = Snapshot()
        snapshot.merge(
            {"electionDate": "2026-11-03", "races": election.select({"level": "ru"}, None, election.step)}
        )
        bodies.append(snapshot.to_bytes())
    return bodies


def measure(name: str, resource: str, rules: Rules, bodies: list[bytes], folder: Path) -> dict[str, Any]:
    """Milliseconds per version for the rules, and for hashing the same bytes."""
    paths = []
    for n, body in enumerate(bodies):
        path = folder / f"{name}-{n}.json"
        path.write_bytes(body)
        paths.append(path)
    rule_ms, hash_ms, events = [], [], 0
    for old, new in zip([None, *paths[:-1]], paths, strict=True):
        started = time.perf_counter()
        events += len(_derive(rules, resource, old, new))
        rule_ms.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        hashlib.sha256(new.read_bytes()).hexdigest()
        hash_ms.append((time.perf_counter() - started) * 1000)
    return {
        "file": name,
        "size_mb": round(statistics.mean(len(b) for b in bodies) / 1e6, 2),
        "versions": len(bodies),
        "rules_ms_p50": statistics.median(rule_ms),
        "rules_ms_max": max(rule_ms),
        "sha256_ms_p50": statistics.median(hash_ms),
        "events": events,
    }


def main(smoke: bool) -> None:
    """Each file's versions through its feed's rules."""
    count = 4 if smoke else 12
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for kind, resource in FSO_FILES:
            rows.append(measure(f"fso {kind}", resource, fso_facts, versions_fso(kind, count), folder))
        rows.append(measure("ap national (ru)", "all", ap_rules, versions_ap(count), folder))
        answer = json.dumps({"dates": []}).encode()
        rows.append(measure("dc postcode", "postcode-AA11AA", dc_facts, [answer] * count, folder))
    report("election_rules", "Election rules: cost per committed version (parse both versions + rules)", rows)


if __name__ == "__main__":
    main(arguments(__doc__ or "").smoke)
