"""Request budgets against a strict upstream that counts each request at an uneven moment."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from pollerd.election.ap import race_key
from pollerd.polling.budget_plan import plan_budgets
from pollerd.polling.quota import QuotaBudget, QuotaBudgets
from pollerd.sim import SimServer
from pollerd.sim.ap import ELECTION_DATE, ApElection, ApServer
from pollerd.sim.democracyclub import DcServer
from pollerd.versions.snapshot import SnapshotReading
from tests.conftest import AP_KEY, ap_source, one_source, opened, sample, wait_for

LIMIT, WINDOW = 6, 2.0


async def test_a_strict_quota_is_never_exceeded_when_answers_are_slow_and_uneven() -> None:
    """The stand-in counts a request when it gets to it (after 0-0.5 s) and answers up to 0.8 s
    later; four clients spend one budget as fast as it lets them for four windows: no 403, and
    the budget was really used (not starved by the margin)."""
    rng = random.Random(7)
    server = SimServer()
    ap = ApServer(
        ApElection(),
        {"key"},
        quota_per_minute=LIMIT,
        quota_window=WINDOW,
        delays=lambda: (rng.uniform(0, 0.5), rng.uniform(0, 0.8)),
    )
    url = await server.serve(ap.app()) + f"/v3/elections/{ELECTION_DATE}?format=json"
    budget = QuotaBudget(LIMIT, window=WINDOW, margin=0.05)
    end = time.monotonic() + 4 * WINDOW

    async def client(session: aiohttp.ClientSession) -> None:
        while time.monotonic() < end:
            with await budget.take():
                async with session.get(url, headers={"x-api-key": "key"}) as response:
                    await response.read()

    try:
        async with aiohttp.ClientSession() as session:
            await asyncio.gather(*(client(session) for _ in range(4)))
    finally:
        await server.close()
    assert ap.quota_answers == 0
    assert len(ap.requests()) >= 3 * LIMIT


def test_a_request_counts_until_its_answer_is_complete() -> None:
    """Taken at 0, answered at 5: the window runs from 5, whatever the send time was."""
    now = [0.0]
    budget = QuotaBudget(1, window=60, clock=lambda: now[0], margin=1)
    spend = budget.try_take()
    assert spend is not None
    now[0] = 5.0
    spend.settle()
    spend.settle()  # once only
    now[0] = 61.0
    assert budget.try_take() is None
    assert budget.wait_needed() == 5.0
    now[0] = 66.0
    assert budget.try_take() is not None


async def test_a_schedule_over_budget_is_spread_not_burst_and_starved(
    dc: tuple[DcServer, str],
    dc_config: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Three postcodes and the ballots feed every 200 ms against 16 requests per 4 s: the plan
    says so at check-config; the daemon (whose postcodes' pickers add three addresses: seven
    requests a cycle) spreads its cycles to fit, so every resource, the feed asked last
    included, is polled every 2.6 s and no request is ever put off, instead of the budget
    going in one burst and the source falling silent."""
    service, base = dc
    config = dc_config(
        base,
        postcodes=["AA11AA", "AA12AA", "AA13AA"],
        candidates=True,
        interval="200ms",
        request_budget="16 per 4s",
    )
    fit = plan_budgets(config.sources)["dc"]
    assert fit.limited and round(fit.effective_interval, 3) == 1.25
    assert fit.words().endswith("each will be made about every 2s")
    stop = asyncio.Event()
    async with opened(config) as daemon:
        runner = asyncio.create_task(daemon.run(stop))
        await asyncio.sleep(5.5)
        stop.set()
        await runner
        assert sample(daemon, "pollerd_budget_limited", source="dc") == 1
        assert sample(daemon, "pollerd_quota_deferred_total", source="dc") == 0
    times: dict[str, list[float]] = defaultdict(list)
    for record in service.log:
        times[record.path].append(record.at)
    feed = [t for path, ts in times.items() if path.endswith("/ballots/") for t in ts]
    assert len(feed) >= 3, dict(times)
    for path, moments in times.items():
        gaps = [b - a for a, b in itertools.pairwise(sorted(moments))]
        assert len(moments) >= 3 and max(gaps) < 4.0, (path, gaps)


def test_a_budget_counts_what_another_replica_spent() -> None:
    """Two requests made on one replica, told to the replica that takes the budget over ten
    seconds later: they count there until their window ends, and are told only once."""
    now = [0.0]
    first = QuotaBudget(3, window=60, clock=lambda: now[0], margin=1)
    second = QuotaBudget(3, window=60, clock=lambda: now[0], margin=1)
    for _ in range(2):
        spend = first.try_take()
        assert spend is not None
        spend.settle()
    now[0] = 10.0
    second.spent_elsewhere(first.unshared())
    assert first.unshared() == []
    assert second.used == 2
    spend = second.try_take()
    assert spend is not None
    spend.settle()
    assert second.try_take() is None
    assert second.wait_needed() == 51.0  # the first replica's requests leave the window at 61
    now[0] = 61.0
    assert second.used == 1 and second.wait_needed() == 0.0


def test_spends_not_told_are_told_next_time_and_budgets_made_later_count_them() -> None:
    """A failed telling keeps the spends; a budget first used after the news counts them too."""
    budgets, later = QuotaBudgets(), QuotaBudgets()
    budget = budgets.for_key("host", 5)
    for _ in range(2):
        spend = budget.try_take()
        assert spend is not None
        spend.settle()
    spent = budgets.unshared()
    assert [len(ages) for ages in spent.values()] == [2]
    budgets.not_shared(spent)  # the database could not be reached
    spent = budgets.unshared()
    assert [len(ages) for ages in spent.values()] == [2]
    later.spent_elsewhere(spent)
    assert later.for_key("host", 5).used == 2
    assert later.for_key("other host", 5).used == 0


async def test_an_ap_source_over_its_quota_spends_it_as_it_frees_and_ends_on_ap_s_truth(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 7 MB snapshot, 3 requests per 6-s window (AP's 30 a minute, at a tenth of the time), a
    cycle every 0.5 s, the night moving every 0.2 s, then quiet: within the first window the
    quota allows after the last change, the merged snapshot is AP's in every race; AP never
    answered 403 and no cycle was skipped."""
    window = 6.0
    election = ApElection(steps=40, national=True, county_factor=16, update_probability=0.04)
    replay = ApServer(election, {AP_KEY}, quota_per_minute=3, quota_window=window, page_size=200)
    server = SimServer()
    base = await server.serve(replay.app())
    source = ap_source(
        base,
        ["console"],
        quota_per_minute=3,
        quota_window=f"{window}s",
        interval="500ms",
        queries=[{"name": "all", "level": "ru"}],
    )
    config = one_source(tmp_path, source, [{"name": "console", "kind": "stdout"}])
    stop = asyncio.Event()
    try:
        async with opened(config) as daemon:
            runner = asyncio.create_task(daemon.run(stop))
            await replay.play(0.2, asyncio.Event())
            quiet_at = time.time()
            truth = {race_key(race): race for race in replay.full_races({"level": "ru"})}
            assert len(json.dumps(list(truth.values()))) > 7_000_000

            def merged() -> dict[str, Any]:
                reading = daemon.readings.get(daemon.pollers["ap"].states["all"].sha256)
                return dict(reading.races) if isinstance(reading, SnapshotReading) else {}

            await wait_for(lambda: merged() == truth, timeout=3 * window)
            caught_up = time.time() - quiet_at
            stop.set()
            await runner
    finally:
        await server.close()
    logged = capsys.readouterr()
    assert replay.quota_answers == 0
    assert "maximum number of running instances" not in logged.out + logged.err
    asked = [r.at for r in replay.requests()]
    spent = sum(1 for at in asked if at <= quiet_at)
    windows = int((quiet_at - asked[0]) // (window + 1.0))  # the budget's window and its margin
    assert spent >= 3 * windows  # the quota was spent as it freed, never left idle
    assert caught_up <= window + 1.5  # the window frees a request: the next cycle asks at once
