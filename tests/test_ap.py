"""The ap source against the simulator's AP replay server: deltas, ETags, quotas, errors, secrets."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from pollerd.commands.status import collect_status
from pollerd.config import Config, ConfigError, parse_config
from pollerd.daemon.app import Daemon
from pollerd.election.ap import race_key
from pollerd.sim import Fault
from pollerd.sim.ap import ApServer
from pollerd.versions.snapshot import Snapshot
from tests.conftest import AP_KEY, opened, sample, stdout_events

KEY = AP_KEY


@pytest.fixture
def ap_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Build a Config with one ap source (``ap``); the key comes from $AP_KEY."""
    monkeypatch.setenv("AP_KEY", KEY)

    def build(base: str, queries: list[dict[str, Any]] | None = None, **source: Any) -> Config:
        raw: dict[str, Any] = {
            "daemon": {"state_dir": str(tmp_path / "state"), "metrics": "off"},
            "sources": [
                {
                    "name": "ap",
                    "kind": "ap",
                    "api": base,
                    "election_date": "2026-11-03",
                    "api_key": "${AP_KEY}",
                    "backoff_base": "20ms",
                    "backoff_max": "100ms",
                    "quota_pause": "50ms",
                    "quota_per_minute": 1000,
                    "queries": queries or [{"name": "all", "level": "ru"}],
                    "sinks": ["out", "console"],
                    **source,
                }
            ],
            "sinks": [
                {"name": "out", "kind": "filesystem", "root": str(tmp_path / "out")},
                {"name": "console", "kind": "stdout"},
            ],
        }
        return parse_config(raw)

    return build


def latest_snapshot(tmp_path: Path, resource: str = "all") -> dict[str, Any]:
    """The snapshot the filesystem sink holds as latest."""
    document: dict[str, Any] = json.loads((tmp_path / "out" / "ap" / resource / "latest.json").read_bytes())
    return document


def by_key(races: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Races by their merge key."""
    return {race_key(race): race for race in races}


@pytest.mark.parametrize("version", ["v3", "v2"])
async def test_merged_deltas_equal_the_full_document_at_every_step(
    ap: tuple[ApServer, str],
    ap_config: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    version: str,
) -> None:
    """After each step the merged snapshot is exactly what a full request returns then (v3 pages
    its deltas, v2 does not)."""
    replay, base = ap
    async with opened(ap_config(base, version=version)) as daemon:
        for _ in range(replay.election.steps + 1):
            assert await daemon.run_once()
            truth = replay.full_races({"level": "ru"})
            assert by_key(latest_snapshot(tmp_path)["races"]) == by_key(truth)
            replay.election.advance()
        events = stdout_events(capsys.readouterr().out)
    assert "minDateTime" not in replay.log[0].query  # one full request, then only links
    assert all("minDateTime" in r.query for r in replay.log[1:])
    assert all(e["details"]["changed_races"] for e in events)
    assert events[0]["details"]["changed_races"] == sorted(by_key(replay.full_races({})))


def test_a_delta_without_the_winner_flag_retracts_the_call() -> None:
    """A brief delta keeps the names from the full answer, but not a winner flag it no longer
    carries: that is a retracted call, and the snapshot must say so."""
    candidate = {"candidateID": "1", "first": "Alex", "last": "Rivera", "voteCount": 10}
    unit = {"level": "state", "reportingunitID": "1", "candidates": [candidate | {"winner": "X"}]}
    race = {"statePostal": "PA", "raceID": "9", "raceTypeID": "G", "reportingUnits": [unit]}
    snapshot = Snapshot()
    snapshot.merge({"races": [race]})
    brief = {"candidateID": "1", "voteCount": 12}
    delta = race | {"reportingUnits": [unit | {"candidates": [brief]}]}
    assert snapshot.merge({"races": [delta]}) == {"PA:9:G"}
    merged = snapshot.races["PA:9:G"]["reportingUnits"][0]["candidates"][0]
    assert merged == {"candidateID": "1", "first": "Alex", "last": "Rivera", "voteCount": 12}


async def test_truncated_deltas_are_fetched_in_one_cycle(
    ap: tuple[ApServer, str], ap_config: Any, tmp_path: Path
) -> None:
    """isTruncated: true means ask again now; the cycle follows every page before committing."""
    replay, base = ap
    async with opened(ap_config(base)) as daemon:
        await daemon.run_once()
        replay.election.advance(6)  # many races change: more than one page of 3
        before = len(replay.log)
        await daemon.run_once()
        pages = len(replay.log) - before
        assert pages >= 2
        assert by_key(latest_snapshot(tmp_path)["races"]) == by_key(replay.full_races({"level": "ru"}))
        assert sample(daemon, "pollerd_changes_total", source="ap") == 2


async def test_an_unchanged_poll_costs_one_request_and_no_event(
    ap: tuple[ApServer, str], ap_config: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nothing changed: AP answers 200 with only the link; no event."""
    replay, base = ap
    async with opened(ap_config(base)) as daemon:
        await daemon.run_once()
        capsys.readouterr()
        before = len(replay.log)
        assert await daemon.run_once()
        assert len(replay.log) == before + 1
        assert stdout_events(capsys.readouterr().out) == []


async def test_restart_continues_from_the_stored_link(
    ap: tuple[ApServer, str], ap_config: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """After a restart the next request is the stored nextrequest link; no duplicate event."""
    replay, base = ap
    config = ap_config(base)
    async with opened(config) as daemon:
        await daemon.run_once()
        replay.election.advance(2)
        await daemon.run_once()
    events = stdout_events(capsys.readouterr().out)
    replay.election.advance(2)
    async with opened(config) as daemon:
        before = len(replay.log)
        await daemon.run_once()
        resumed = replay.log[before:]
    assert all("minDateTime" in r.query for r in resumed), [r.query for r in resumed]
    again = stdout_events(capsys.readouterr().out)
    assert [e["sequence"] for e in again] == [len(events) + 1]
    assert {e["event_id"] for e in again}.isdisjoint({e["event_id"] for e in events})


async def test_etag_mode_uses_if_none_match(
    ap: tuple[ApServer, str], ap_config: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """mode = "etag": the full document each time, 304 when it has not changed."""
    replay, base = ap
    async with opened(ap_config(base, mode="etag")) as daemon:
        await daemon.run_once()
        await daemon.run_once()
        assert replay.log[-1].status == 304 and replay.log[-1].headers.get("If-None-Match")
        replay.election.advance(3)
        await daemon.run_once()
    events = stdout_events(capsys.readouterr().out)
    assert [e["sequence"] for e in events] == [1, 2]
    assert events[1]["details"]["changed_races"]


async def test_three_queries_on_one_key_never_exceed_the_budget(
    ap: tuple[ApServer, str], ap_config: Any
) -> None:
    """The daemon spends at most quota_per_minute requests a minute on a key, all queries
    together, and spends them: a cycle of three, then the two requests the minute has left (the
    query put off goes first once the window frees one); never a 403."""
    replay, base = ap
    replay.quota_per_minute = 5
    queries = [
        {"name": "co", "statePostal": "CO"},
        {"name": "wv", "statePostal": "WV"},
        {"name": "senate", "officeID": "S"},
    ]
    config = ap_config(base, queries, quota_per_minute=5, interval="100ms")
    daemon = Daemon(config)
    await daemon.open()
    stop = asyncio.Event()
    runner = asyncio.create_task(daemon.run(stop))
    try:
        await asyncio.sleep(2.0)  # 20 cycles of 3 queries wanted: far more than 5 requests
    finally:
        stop.set()
        await runner
        await daemon.close()
    assert len(replay.log) == 5
    assert replay.quota_answers == 0
    asked = [r.query.split("&")[0] for r in replay.log]
    assert asked[:3] == ["statePostal=CO", "statePostal=WV", "officeID=S"]
    assert sample(daemon, "pollerd_budget_limited", source="ap") == 1


@pytest.mark.parametrize("refusal", ["quota", "server"])
async def test_a_refusal_is_survived_without_losing_a_delta(
    ap: tuple[ApServer, str], ap_config: Any, tmp_path: Path, refusal: str
) -> None:
    """AP's 403 quota answer (wait 5-10 s, scaled down here) or a 502 (backoff): the same link is
    asked again and nothing is lost."""
    replay, base = ap
    async with opened(ap_config(base)) as daemon:
        await daemon.run_once()
        replay.election.advance(3)
        if refusal == "quota":
            replay.quota_per_minute = 0  # AP says the quota is spent
        else:
            replay.inject("*", Fault("status", status=502, count=1))
        assert not await daemon.run_once()
        quota = 1 if refusal == "quota" else 0
        assert replay.quota_answers == quota
        assert sample(daemon, "pollerd_quota_exceeded_total", source="ap") == quota
        replay.quota_per_minute = 1000
        await asyncio.sleep(0.15)  # quota_pause 50 ms (waits 50-100 ms); backoff_max 100 ms
        assert await daemon.run_once()
    assert by_key(latest_snapshot(tmp_path)["races"]) == by_key(replay.full_races({"level": "ru"}))


async def test_a_refused_key_stops_only_its_source(
    ap: tuple[ApServer, str], ap_config: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """401: a clear error, the source marked failed, no more requests; others go on."""
    replay, base = ap
    monkeypatch.setenv("AP_KEY", "wrong-key-0000")
    config = ap_config(base)
    raw = config.model_dump(mode="json", by_alias=True)
    raw["sources"][0]["api_key"] = "wrong-key-0000"
    raw["sources"].append({**raw["sources"][0], "name": "good", "api_key": KEY})
    raw["daemon"]["state_dir"] = config.daemon.state_dir.as_posix()
    config = parse_config(raw)
    async with opened(config) as daemon:
        assert not await daemon.run_once()
        assert sample(daemon, "pollerd_source_failed", source="ap") == 1
        assert sample(daemon, "pollerd_source_failed", source="good") == 0
        refused = len([r for r in replay.log if r.status == 401])
        await daemon.run_once()
        assert len([r for r in replay.log if r.status == 401]) == refused
        assert sample(daemon, "pollerd_changes_total", source="good") == 1
        assert "401" in (daemon.pollers["ap"].states["all"].last_error or "")
    status = await collect_status(config)
    assert "401" in status["stopped"]["ap"] and "good" not in status["stopped"]


async def test_a_400_is_surfaced_verbatim(ap: tuple[ApServer, str], ap_config: Any) -> None:
    """AP's errorMessage reaches the status (minus secrets)."""
    _, base = ap
    async with opened(ap_config(base, [{"name": "bad", "statePostal": "XX"}])) as daemon:
        assert not await daemon.run_once()
        error = daemon.pollers["ap"].states["bad"].last_error or ""
    assert "Invalid statePostal value: XX" in error


async def test_signature_and_raw_deltas(
    ap: tuple[ApServer, str], ap_config: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """includesignature keeps AP's header in the event; raw_deltas adds ``<query>.delta``."""
    replay, base = ap
    async with opened(ap_config(base, include_signature=True, raw_deltas=True)) as daemon:
        await daemon.run_once()
        replay.election.advance(2)
        await daemon.run_once()
    events = stdout_events(capsys.readouterr().out)
    assert {e["resource"] for e in events} == {"all", "all.delta"}
    assert all(e["details"]["signature"] for e in events)
    delta = json.loads((tmp_path / "out" / "ap" / "all.delta" / "latest.json").read_bytes())
    assert 0 < len(delta["races"]) < len(replay.full_races({}))


async def test_rehearsal_is_explicit_and_loud(
    ap: tuple[ApServer, str],
    ap_config: Any,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """resultsType t only with rehearsal = true, which asks for test data and says so."""
    replay, base = ap
    with pytest.raises(ConfigError, match="set rehearsal = true"):
        ap_config(base, [{"name": "t", "resultsType": "t"}])
    async with opened(ap_config(base, rehearsal=True)) as daemon:
        await daemon.run_once()
    assert "resultsType=t" in replay.log[0].query
    assert "REHEARSAL" in caplog.text
    [event] = stdout_events(capsys.readouterr().out)
    assert event["details"]["test"] is True


@pytest.mark.parametrize(
    ("query", "rule"),
    [
        ({"raceID": "7162"}, "need exactly one statePostal"),
        ({"raceID": "7162", "statePostal": "CO,WV"}, "need exactly one statePostal"),
        ({"reportingUnitID": "6001", "statePostal": ["CO", "PA"]}, "need exactly one statePostal"),
        ({"omitResults": True, "setZeroCounts": True}, "mutually exclusive"),
        ({"resultsType": "x"}, "'l', 't', 'c' or 'b'"),
        ({"statePostal": ["CO"] * 2100}, "AP refuses more than 6000"),
        ({"format": "xml"}, "unknown key"),
    ],
)
def test_invalid_queries_are_refused_with_the_rule(ap_config: Any, query: dict[str, Any], rule: str) -> None:
    """AP's rules are checked at load, with the key path and the rule."""
    with pytest.raises(ConfigError) as caught:
        ap_config("http://127.0.0.1:9", [{"name": "q", **query}])
    assert any(p.startswith("sources[0]") and rule in p for p in caught.value.problems), caught.value.problems


def test_the_key_can_come_from_a_file(ap_config: Any, tmp_path: Path) -> None:
    """api_key_file (systemd credentials): read at load; a missing file names its key path."""
    key_file = tmp_path / "ap_key"
    key_file.write_text(KEY + "\n")
    source = ap_config("http://127.0.0.1:9", api_key=None, api_key_file=str(key_file)).sources[0]
    assert source.api_key.get_secret_value() == KEY
    with pytest.raises(ConfigError, match=r"sources\[0\]\.api_key_file: .*No such file"):
        ap_config("http://127.0.0.1:9", api_key=None, api_key_file=str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="exactly one of api_key"):
        ap_config("http://127.0.0.1:9", api_key_file=str(key_file))


def test_the_election_date_is_checked(ap_config: Any) -> None:
    """YYYY-MM-DD, a real date."""
    with pytest.raises(ConfigError, match=r"sources\[0\]\.election_date: '2026-02-30'"):
        ap_config("http://127.0.0.1:9", election_date="2026-02-30")


async def test_the_key_is_never_written_anywhere(
    ap: tuple[ApServer, str],
    ap_config: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Not in logs, events, the state directory or the output (401 and 400 paths included)."""
    replay, base = ap
    async with opened(ap_config(base, raw_deltas=True)) as daemon:
        await daemon.run_once()
        replay.election.advance(3)
        replay.inject("*", Fault("status", status=500, count=1))
        await daemon.run_once()
        await asyncio.sleep(0.05)
        await daemon.run_once()
    captured = capsys.readouterr()
    assert all(r.headers.get("x-api-key") == KEY for r in replay.log)  # it was sent...
    for text in (captured.out, captured.err, caplog.text):
        assert KEY not in text
    for path in tmp_path.rglob("*"):  # ...and written nowhere: state, blobs, outputs
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path
    assert any((tmp_path / "state").rglob("*.sqlite3*"))
