"""The dashboard's per-source series move for every kind of source, after one cycle."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from pollerd.config import parse_config
from pollerd.sim.night import PACKAGE, ElectionNight
from tests.conftest import AP_KEY, DC_KEY, ConfigFactory, Upstream, opened
from tests.test_packaging import ROOT, used_names

# What one cycle that finds new versions must move for any source (sums of histograms: _count)
ACTIVITY = (
    "pollerd_polls_total",
    "pollerd_probe_duration_seconds_count",
    "pollerd_resources_watched",
    "pollerd_last_success_timestamp_seconds",
    "pollerd_last_change_timestamp_seconds",
    "pollerd_changes_total",
    "pollerd_downloaded_bytes_total",
    "pollerd_http_requests_total",
    "pollerd_version_age_seconds_count",
)


def test_the_dashboard_shows_each_activity_series() -> None:
    """Each series below is on the dashboard (so the next test covers what an editor sees)."""
    dashboard = json.loads((ROOT / "config/grafana/pollerd-dashboard.json").read_text())
    used = used_names(" ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"]))
    shown = {name.removesuffix("_total") for name in used} | used
    missing = [
        n
        for n in ACTIVITY
        if n.removesuffix("_count").removesuffix("_total") not in shown
        and n not in ("pollerd_http_requests_total",)
    ]  # requests: summed into polls' panel
    assert missing == []


async def test_every_kind_moves_every_activity_series(
    upstream: Upstream,
    night: ElectionNight,
    ap: tuple[object, str],
    dc: tuple[object, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """http, fso, ap and democracyclub sources, one cycle each: every series has moved."""
    monkeypatch.setenv("AP_KEY", AP_KEY)
    monkeypatch.setenv("DC_KEY", DC_KEY)
    url = upstream.file("/a.json", b'{"v": 1}')
    config = parse_config(
        {
            "daemon": {"state_dir": str(tmp_path / "state"), "metrics": "off"},
            "sources": [
                {"name": "http", "kind": "http", "urls": [url], "sinks": ["k"]},
                {
                    "name": "fso",
                    "kind": "fso",
                    "api": night.api_url,
                    "package": PACKAGE,
                    "allowed_hosts": ["127.0.0.1"],
                    "sinks": ["k"],
                },
                {
                    "name": "ap",
                    "kind": "ap",
                    "api": ap[1],
                    "election_date": "2026-11-03",
                    "api_key": "${AP_KEY}",
                    "sinks": ["k"],
                    "queries": [{"name": "all"}],
                },
                {
                    "name": "dc",
                    "kind": "democracyclub",
                    "api": f"{dc[1]}/api/v1",
                    "candidates_api": f"{dc[1]}/api/next",
                    "auth_token": "${DC_KEY}",
                    "postcodes": ["AA11AA"],
                    "candidates": True,
                    "sinks": ["k"],
                },
            ],
            "sinks": [{"name": "k", "kind": "filesystem", "root": str(tmp_path / "out")}],
        }
    )
    async with opened(config) as daemon:
        assert await daemon.run_once()
        still = {
            source: [name for name in ACTIVITY if _total(daemon.metrics.registry, name, source) <= 0]
            for source in ("http", "fso", "ap", "dc")
        }
    assert still == {"http": [], "fso": [], "ap": [], "dc": []}


def _total(registry: CollectorRegistry, name: str, source: str) -> float:
    """The sum of a family's samples of one source (any other labels)."""
    return sum(
        s.value
        for metric in registry.collect()
        for s in metric.samples
        if s.name == name and s.labels.get("source") == source
    )


async def test_a_versions_age_is_measured_from_the_upstreams_own_time(
    upstream: Upstream, make_config: ConfigFactory
) -> None:
    """Last-Modified 30 s ago: the version was 30 s old when committed ("how late are we?")."""
    upstream.host.add("/a.json")
    upstream.host.publish("/a.json", b'{"v": 1}', at=time.time() - 30)
    async with opened(make_config([upstream.url("/a.json")])) as daemon:
        assert await daemon.run_once()
        registry = daemon.metrics.registry
        assert _total(registry, "pollerd_version_age_seconds_count", "files") == 1
        assert 29 <= _total(registry, "pollerd_version_age_seconds_sum", "files") < 40
