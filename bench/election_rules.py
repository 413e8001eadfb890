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
import time
from datetime import timedelta
from typing import Any

from bench.common import arguments, report
from pollerd.core.election import Rules
from pollerd.core.payload import strict_json
from pollerd.election.dc import dc_facts
from pollerd.election.fso import fso_facts
from pollerd.sim.ap_election import ApElection
from pollerd.sim.fso_content import COUNT_STARTS, FULL, ElectionContent
from pollerd.sources.ap import ap_rules
from pollerd.versions.snapshot import Snapshot

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


def versions_ap(count: int) -> tuple[list[bytes], list[Any]]:
    """``count`` snapshots of the national-sized AP night at reporting-unit level, 10 steps apart,
    as bytes and as the readings the AP poller hands the rules (merged from AP's deltas)."""
    election = ApElection(national=True)
    snapshot = Snapshot("2026-11-03")
    bodies, readings, since = [], [], None
    for _ in range(count):
        election.advance(10)
        changed = snapshot.merge({"races": election.select({"level": "ru"}, since, election.step)})
        since = election.step
        bodies.append(snapshot.to_bytes())
        readings.append(snapshot.reading(changed))
    return bodies, readings


def measure(
    name: str, resource: str, rules: Rules, bodies: list[bytes], readings: list[Any] | None = None
) -> dict[str, Any]:
    """Milliseconds per version: the one parse of the new version when it comes (an AP version is
    merged from its delta instead: no parse of the snapshot), the rules on the held reading of the
    version before and the new one, and hashing the same bytes."""
    parse_ms, rule_ms, hash_ms, events = [], [], [], 0
    previous = None
    for n, body in enumerate(bodies):
        started = time.perf_counter()
        reading = strict_json(body) if readings is None else readings[n]
        parse_ms.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        events += len(rules(resource, previous, reading))
        rule_ms.append((time.perf_counter() - started) * 1000)
        previous = reading
        started = time.perf_counter()
        hashlib.sha256(body).hexdigest()
        hash_ms.append((time.perf_counter() - started) * 1000)
    return {
        "file": name,
        "size_mb": round(statistics.mean(len(b) for b in bodies) / 1e6, 2),
        "versions": len(bodies),
        "parse_ms_p50": statistics.median(parse_ms),
        "rules_ms_p50": statistics.median(rule_ms),
        "rules_ms_max": max(rule_ms),
        "sha256_ms_p50": statistics.median(hash_ms),
        "events": events,
    }


def main(smoke: bool) -> None:
    """Each file's versions through its feed's rules."""
    count = 4 if smoke else 12
    rows = []
    for kind, resource in FSO_FILES:
        rows.append(measure(f"fso {kind}", resource, fso_facts, versions_fso(kind, count)))
    rows.append(measure("ap national (ru)", "all", ap_rules, *versions_ap(count)))
    answer = json.dumps({"dates": []}).encode()
    rows.append(measure("dc postcode", "postcode-AA11AA", dc_facts, [answer] * count))
    report("election_rules", "Election rules: cost per committed version (one parse + rules)", rows)


if __name__ == "__main__":
    main(arguments(__doc__ or "").smoke)
