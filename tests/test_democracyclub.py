"""The democracyclub source against the simulator's Democracy Club stand-in."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from pollerd.commands.status import collect_status
from pollerd.config import ConfigError, parse_config
from pollerd.config.dc import postcode
from pollerd.polling.answers import FetchFailure
from pollerd.sim.democracyclub import PICKER_SLUGS, POSTCODES, DcServer
from pollerd.sources.dc_answers import DcRefused, refusal
from tests.conftest import DC_KEY, opened, sample, stdout_events

KEY = DC_KEY


def by_resource(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The last event of each resource."""
    return {e["resource"]: e for e in events}


async def test_every_sandbox_scenario_becomes_resources(
    dc: tuple[DcServer, str], dc_config: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Seven postcodes, and the address picker of AA13AA expands to its three addresses."""
    service, base = dc
    async with opened(dc_config(base, postcodes=[p.lower()[:3] + " " + p[3:] for p in POSTCODES])) as daemon:
        assert await daemon.run_once()
        events = by_resource(stdout_events(capsys.readouterr().out))
        assert set(events) == {f"postcode-{p}" for p in POSTCODES} | {
            f"address-{slug}" for slug in PICKER_SLUGS
        }
        summaries = {rid: e["details"]["summary"] for rid, e in events.items()}
        assert summaries["postcode-AA11AA"] == {"first": True, "dates": [], "ballots": []}
        assert summaries["postcode-AA14AA"]["dates"] == ["2026-05-07", "2026-05-14", "2026-06-11"]
        assert len(summaries["postcode-AA14AA"]["ballots"]) == 4
        assert all("auth_token=" in r.query for r in service.log)  # the key went along...
        assert all(KEY not in e["url"] for e in events.values())  # ...and nowhere else
        assert await daemon.run_once()  # unchanged: no event, one request a resource
        assert stdout_events(capsys.readouterr().out) == []


async def test_picked_addresses_go_when_the_picker_goes(
    dc: tuple[DcServer, str], dc_config: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """When AA13AA no longer needs a picker, its addresses stop being polled."""
    service, base = dc
    async with opened(dc_config(base, postcodes=["AA13AA"])) as daemon:
        await daemon.run_once()
        capsys.readouterr()
        service.world.picker_open = False
        await daemon.run_once()
        [event] = stdout_events(capsys.readouterr().out)
        before = len(service.log)
        await daemon.run_once()
    assert event["resource"] == "postcode-AA13AA"
    assert event["details"]["summary"]["address_picker"] is False
    assert [r.path for r in service.log[before:]] == ["/api/v1/postcode/AA13AA/"]


async def test_the_sandbox_needs_no_key(
    dc: tuple[DcServer, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``sandbox = true``: /api/v1/sandbox/..., no auth_token at all."""
    service, base = dc
    config = parse_config(
        {
            "daemon": {"state_dir": str(tmp_path / "state"), "metrics": "off"},
            "sources": [
                {
                    "name": "dc",
                    "kind": "democracyclub",
                    "api": f"{base}/api/v1",
                    "sandbox": True,
                    "postcodes": ["AA12AA"],
                    "sinks": ["c"],
                }
            ],
            "sinks": [{"name": "c", "kind": "stdout"}],
        }
    )
    async with opened(config) as daemon:
        assert await daemon.run_once()
    assert [r.path for r in service.log] == ["/api/v1/sandbox/postcode/AA12AA/"]
    assert "auth_token" not in service.log[0].query
    assert len(stdout_events(capsys.readouterr().out)) == 1


async def test_each_timeline_change_is_one_event_with_its_summary(
    dc: tuple[DcServer, str], dc_config: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Candidates added, a ballot cancelled and replaced, a station moved; a re-serialisation
    of the same data is no event (though every byte differs)."""
    service, base = dc
    async with opened(dc_config(base, postcodes=list(POSTCODES))) as daemon:
        await daemon.run_once()
        capsys.readouterr()
        expected = [
            (
                "postcode-AA12AA",
                {"candidates": {"local.sandbox.harbour.2026-05-07": {"added": ["Dora Maar"]}}},
            ),
            (
                "postcode-AA12AB",
                {
                    "dates_added": ["2026-05-21"],
                    "ballots_added": ["local.sandbox.hill.2026-05-21"],
                    "ballots_cancelled": ["local.sandbox.hill.2026-05-07"],
                },
            ),
            ("postcode-AA12AA", {"polling_station_changed": ["2026-05-07"]}),
            (None, None),  # step 4 withdraws an election: no postcode changes
            (None, None),  # step 5 re-serialises everything
        ]
        for resource, summary in expected:
            service.world.advance()
            await daemon.run_once()
            events = stdout_events(capsys.readouterr().out)
            if resource is None:
                assert events == []
                continue
            [event] = events
            assert (event["resource"], event["details"]["summary"]) == (resource, summary)
        assert service.world.noise


async def test_elections_are_walked_by_offset_with_the_key_and_merged(
    dc: tuple[DcServer, str], dc_config: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Page two succeeds (key and filters re-added), repeats across pages are merged, a withdrawn
    election is an event."""
    service, base = dc
    config = dc_config(base, elections={"current": True, "identifier_type": "ballot"})
    async with opened(config) as daemon:
        assert await daemon.run_once()
        events = stdout_events(capsys.readouterr().out)
        assert len(events) == len({e["resource"] for e in events}) == 230
        pages = [r for r in service.log if r.path == "/api/v1/elections/"]
        assert len(pages) >= 3 and all(r.status == 200 for r in service.log)
        assert all("auth_token=" in r.query and "current=1" in r.query for r in pages)
        for _ in range(4):
            service.world.advance()
        await daemon.run_once()
        [withdrawn] = stdout_events(capsys.readouterr().out)
        assert withdrawn["details"]["summary"] == {"vanished": True}
        assert sample(daemon, "pollerd_changes_total", source="dc") == 231


async def test_a_bad_postcode_fails_alone(
    dc: tuple[DcServer, str], dc_config: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """400 "could not geocode" marks that postcode failed, with the reason; the others go on."""
    _, base = dc
    async with opened(dc_config(base, postcodes=["ZZ9 9ZZ", "AA12AA"])) as daemon:
        assert not await daemon.run_once()
        error = daemon.pollers["dc"].states["postcode-ZZ99ZZ"].last_error or ""
    assert "Could not geocode from any source" in error
    assert [e["resource"] for e in stdout_events(capsys.readouterr().out)] == ["postcode-AA12AA"]


async def test_the_request_budget_is_never_exceeded(dc: tuple[DcServer, str], dc_config: Any) -> None:
    """A budget of 4 per 5 minutes: four requests, then waiting, never the firewall's 403."""
    service, base = dc
    service.firewall_limit = 4
    config = dc_config(base, postcodes=list(POSTCODES), request_budget="4 per 5m")
    async with opened(config) as daemon:
        for _ in range(3):
            await daemon.run_once()
        assert sample(daemon, "pollerd_quota_deferred_total", source="dc") > 0
    assert len(service.log) == 4
    assert all(r.status == 200 for r in service.log)


async def test_restart_resumes_the_candidates_cursor(
    dc: tuple[DcServer, str], dc_config: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """The ballots feed continues after the stored last_updated; one changed ballot, one event."""
    service, base = dc
    config = dc_config(base, candidates=True)
    async with opened(config) as daemon:
        await daemon.run_once()
    first = stdout_events(capsys.readouterr().out)
    assert len(first) == len(service.world.ballots)
    service.world.advance()
    async with opened(config) as daemon:
        before = len(service.log)
        await daemon.run_once()
    [resumed] = service.log[before:]
    assert "last_updated=2026-04-01" in resumed.query
    [event] = stdout_events(capsys.readouterr().out)
    assert event["resource"] == "ballot-local.sandbox.harbour.2026-05-07"
    assert event["details"]["summary"]["changed"] == ["candidacies", "last_updated"]


async def test_a_library_user_agent_is_a_clear_configuration_error(
    dc: tuple[DcServer, str], dc_config: Any
) -> None:
    """The candidates site answers 418 to library user agents: the error names ours."""
    _, base = dc
    config = dc_config(base, {"user_agent": "python-requests/2.31"}, candidates=True)
    async with opened(config) as daemon:
        assert not await daemon.run_once()
        assert sample(daemon, "pollerd_source_failed", source="dc") == 1
    stopped = (await collect_status(config))["stopped"]["dc"]
    assert "'python-requests/2.31'" in stopped and "user_agent" in stopped


async def test_a_wrong_key_stops_the_source_with_one_error(
    dc: tuple[DcServer, str], dc_config: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """401: the source stops (and says why); no request after that."""
    service, base = dc
    monkeypatch.setenv("DC_KEY", "not-the-key")
    config = dc_config(base, postcodes=["AA11AA", "AA12AA"])
    monkeypatch.setenv("DC_KEY", KEY)
    async with opened(config) as daemon:
        assert not await daemon.run_once()
        await daemon.run_once()
    assert len(service.log) == 1
    assert "401" in (await collect_status(config))["stopped"]["dc"]


def test_drf_throttling_says_how_long_to_wait() -> None:
    """429 with DRF's detail: the wait is read from it."""
    failure = FetchFailure(
        "status",
        "HTTP 429",
        status=429,
        body=(b'{"detail": "Request was throttled. Expected available in 37 seconds."}'),
    )
    refused = refusal(failure)
    assert isinstance(refused, DcRefused) and refused.wait == 37


def test_postcodes_are_normalised_and_checked(dc_config: Any) -> None:
    """Whitespace and case do not matter; a shape that is not a UK postcode is refused."""
    assert postcode(" sw1a 1aa ") == "SW1A1AA"
    with pytest.raises(ConfigError, match=r"sources\[0\]\.postcodes\[1\]: .*UK postcode"):
        dc_config("http://127.0.0.1:9", postcodes=["AA1 1AA", "12345"])
    with pytest.raises(ConfigError, match="sandbox serves postcodes and addresses only"):
        dc_config("http://127.0.0.1:9", sandbox=True, candidates=True)


async def test_the_key_is_never_written_anywhere(
    dc: tuple[DcServer, str],
    dc_config: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Not in logs, events, the state directory or the outputs, errors included."""
    service, base = dc
    config = dc_config(
        base,
        postcodes=["AA12AA", "ZZ9 9ZZ"],
        addresses=["nope"],
        elections={"current": True},
        candidates=True,
    )
    async with opened(config) as daemon:
        await daemon.run_once()
        service.world.advance()
        await asyncio.sleep(0.05)
        await daemon.run_once()
    captured = capsys.readouterr()
    for text in (captured.out, captured.err, caplog.text):
        assert KEY not in text
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name.endswith(".sqlite3") for p in files)
    for path in files:
        assert KEY.encode() not in path.read_bytes(), path
