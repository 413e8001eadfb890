"""Three replica processes on one PostgreSQL through an hour of the simulated 2023 night (the S3
failure, the move to the fallback host, the added resource, the DAM phase), played 180 times
faster than real time: every version recorded reaches each sink once, in sequence order, with
no sequence used twice and no gap; with the replica polling the source killed (``kill -9``) when
S3 fails, another takes over within the lease and nothing is lost or announced under a second id."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pollerd.sim import SimServer
from pollerd.sim.fso_content import SMALL
from pollerd.sim.night import PACKAGE, ElectionNight, Script
from tests.conftest import Receiver, versions_on_disk, wait_for
from tests.test_replicas import TTL, fast_webhook, holders, replica_file

START = datetime(2023, 10, 22, 13, 30, tzinfo=UTC)
END = START + timedelta(hours=1)
SPEED = 180.0
INTERVAL = 0.2  # real seconds between polls
REPLICAS = ("r1", "r2", "r3")
SCRIPT = Script(
    primary_down=START + timedelta(minutes=18),
    to_fallback=START + timedelta(minutes=22),
    added_at=START + timedelta(minutes=30),
    to_dam=START + timedelta(minutes=45),
)


def night_tables(api: str, hook: str, out: Path) -> str:
    """The night's fso source into two sinks (a webhook and a shared folder): three leases."""
    return (
        f'[[sources]]\nname = "nrw"\nkind = "fso"\napi = "{api}"\npackage = "{PACKAGE}"\n'
        f'interval = "{INTERVAL:g}s"\ndiscovery_interval = "{2 * INTERVAL:g}s"\n'
        'allowed_hosts = ["127.0.0.1"]\nbackoff_base = "100ms"\n'
        'backoff_max = "500ms"\nsinks = ["hook", "files"]\n'
        + fast_webhook(hook)
        + f'[[sinks]]\nname = "files"\nkind = "filesystem"\nroot = "{out}"\n'
    )


@pytest.fixture
async def night() -> AsyncIterator[ElectionNight]:
    """The simulated night (small files) with this test's script, served, at its window's start."""
    server = SimServer()
    election = ElectionNight(SMALL, script=SCRIPT)
    await election.open(server)
    election.advance_to(START)
    yield election
    await server.close()


@pytest.fixture
async def replicas(
    night: ElectionNight, receiver: Receiver, postgres_url: str, tmp_path: Path
) -> AsyncIterator[dict[str, asyncio.subprocess.Process]]:
    """Three replica processes, each holding one of the three leases."""
    tables = night_tables(night.api_url, receiver.url, tmp_path / "out")
    processes = {}
    for name in REPLICAS:
        config = replica_file(tmp_path, name, postgres_url, tables)
        processes[name] = await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "pollerd", "run", "-c", str(config)),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=(tmp_path / f"{name}.log").open("wb"),
        )
    try:
        await wait_for(lambda: sorted(holders(postgres_url).values()) == list(REPLICAS), 60)
        yield processes
    finally:
        for process in processes.values():
            if process.returncode is None:
                process.terminate()
                await process.wait()


def delivered(receiver: Receiver) -> dict[str, dict[int, tuple[str, set[str]]]]:
    """Resource -> sequence -> (sha256, the event ids it reached the webhook under)."""
    found: dict[str, dict[int, tuple[str, set[str]]]] = {}
    for request in receiver.requests:
        by_sequence = found.setdefault(request.headers["X-Pollerd-Resource"], {})
        sequence = int(request.headers["X-Pollerd-Sequence"])
        sha, ids = by_sequence.setdefault(sequence, (request.headers["X-Pollerd-Sha256"], set()))
        assert request.headers["X-Pollerd-Sha256"] == sha, "one sequence, two versions"
        ids.add(request.headers["X-Pollerd-Event-Id"])
    return found


def caught_up(night: ElectionNight, receiver: Receiver) -> bool:
    """Every file's last version of the window has reached the webhook."""
    seen = delivered(receiver)
    return all(
        name in seen and seen[name][max(seen[name])][0] == shas[-1] for name, shas in night.truth.items()
    )


def is_subsequence(part: list[str], whole: list[str]) -> bool:
    """``part`` appears in ``whole`` in the same order (versions may be missed, never reordered)."""
    remaining = iter(whole)
    return all(item in remaining for item in part)


@pytest.mark.parametrize("kill", [False, True], ids=["all-running", "kill-9-at-s3-failure"])
async def test_three_replicas_one_night(
    kill: bool,
    night: ElectionNight,
    replicas: dict[str, asyncio.subprocess.Process],
    receiver: Receiver,
    postgres_url: str,
    tmp_path: Path,
) -> None:
    """Every version recorded reaches the webhook and the folder once, as sequences 1..n per file,
    in the order the night published them, each under one event id."""
    stop = asyncio.Event()
    playing = asyncio.create_task(night.play(SPEED, stop, origin=START, until=END))
    if kill:
        await asyncio.sleep((SCRIPT.primary_down - START).total_seconds() / SPEED)
        victim = holders(postgres_url)["source:nrw"]
        os.kill(replicas[victim].pid, signal.SIGKILL)
        killed = time.monotonic()
        await wait_for(lambda: holders(postgres_url).get("source:nrw", victim) != victim, 30)
        takeover = time.monotonic() - killed
        assert takeover < TTL + INTERVAL + 5.0, takeover  # the bound is TTL + interval; 5 s for a busy CI
    await playing
    await wait_for(lambda: caught_up(night, receiver), 60)

    seen = delivered(receiver)
    assert set(seen) == set(night.truth)
    for name, by_sequence in seen.items():
        assert sorted(by_sequence) == list(range(1, len(by_sequence) + 1)), name  # no gap
        assert all(len(ids) == 1 for _, ids in by_sequence.values()), name  # no second id
        shas = [by_sequence[n][0] for n in sorted(by_sequence)]
        assert is_subsequence(shas, night.truth[name]), name
    counts = {name: len(by_sequence) for name, by_sequence in seen.items()}
    on_disk = tmp_path / "out"
    await wait_for(lambda: all(len(versions_on_disk(on_disk, "nrw", n)) == c for n, c in counts.items()), 30)
    caught = sum(counts.values())
    assert caught > len(night.truth) * 2  # the night was followed, not just its end
    repeats = len(receiver.requests) - caught
    if not kill:
        assert repeats == 0  # nobody died: not even an allowed repeat of the same id
