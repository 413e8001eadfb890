"""The filesystem sink writing elex's results CSV beside every AP version, the newest as elex
itself prints it for the same snapshot (``test_elex_exact`` compares the tables themselves)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from pollerd.results.elex import results_rows, to_csv
from pollerd.sim.ap import ApServer
from tests.conftest import ap_source, one_source, opened
from tests.test_elex_exact import elex


async def test_the_filesystem_sink_writes_the_csv_beside_each_ap_version(
    ap: tuple[ApServer, str], tmp_path: Path, monkeypatch: Any
) -> None:
    """``format = "csv"``: every version of an AP query gets its CSV, and latest.csv is the
    newest snapshot's; the raw delta resource gets none."""
    replay, base = ap
    queries = [{"name": "all", "level": "ru"}]
    source = ap_source(base, ["out"], raw_deltas=True, queries=queries)
    config = one_source(
        tmp_path,
        source,
        [{"name": "out", "kind": "filesystem", "root": str(tmp_path / "out"), "format": "csv"}],
    )
    async with opened(config) as daemon:
        for _ in range(4):
            assert await daemon.run_once()
            replay.election.advance(10)
    folder = tmp_path / "out" / "ap" / "all"
    versions = sorted(p for p in folder.glob("2*.json") if not p.name.endswith(".event.json"))
    assert len(versions) == 4
    for version in versions:
        table = list(csv.DictReader(io.StringIO(version.with_suffix(".csv").read_text())))
        snapshot = json.loads(version.read_bytes())
        assert len(table) == sum(len(u["candidates"]) for r in snapshot["races"] for u in r["reportingUnits"])
    latest = json.loads((folder / "latest.json").read_bytes())
    assert (folder / "latest.csv").read_bytes() == to_csv(results_rows(latest))
    assert (folder / "latest.csv").read_text() == elex("results", latest, tmp_path)
    assert not list((tmp_path / "out" / "ap" / "all.delta").glob("*.csv"))
