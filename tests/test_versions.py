"""AP versions kept as their change: canonical bytes as before, deltas read back whole byte for
byte, chains kept while needed and let go after a checkpoint, restart, redelivery, migrate-state."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from pollerd.cli import main
from pollerd.config import Config
from pollerd.core.canonical import dump_sorted
from pollerd.election.ap import race_key
from pollerd.sim.ap import ApElection, ApServer
from pollerd.sim.fso_content import COUNT_STARTS, FULL, ElectionContent
from pollerd.store.redeliver import redeliver_in
from pollerd.versions.snapshot import Snapshot
from pollerd.versions.stored import DELTA_MARK
from tests.conftest import ap_source, one_source, opened, stdout_events

CHECKPOINT_EVERY = 4


def old_canonical(value: Any) -> bytes:
    """What pollerd wrote before orjson: the standard library's canonical form."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@pytest.mark.parametrize(("national", "counties"), [(False, 1), (True, 1), (True, 3)])
def test_canonical_bytes_are_unchanged_on_the_simulator_s_snapshots(national: bool, counties: int) -> None:
    """orjson's sorted output is byte for byte the old serializer's, and a snapshot's size (kept
    per race) is its bytes' length, at every tenth step of the night."""
    election = ApElection(national=national, county_factor=counties)
    snapshot = Snapshot("2026-11-03")
    for _ in range(6):
        snapshot.merge({"races": election.select({"level": "ru"}, None, election.step)})
        body = snapshot.to_bytes()
        assert body == old_canonical(
            {"electionDate": "2026-11-03", "races": [snapshot.races[k] for k in sorted(snapshot.races)]}
        )
        assert snapshot.digest()[1] == len(body)
        election.advance(10)


def test_canonical_bytes_are_unchanged_on_the_fso_files() -> None:
    """The FSO night's files (non-ASCII names, fractions) give the same bytes both ways."""
    content = ElectionContent(FULL)
    for kind in ("parties", "candidates", "turnout"):
        document = json.loads(content.render(kind, COUNT_STARTS + timedelta(hours=6)))
        assert dump_sorted(document) == old_canonical(document), kind


def ap_night(tmp_path: Path, base: str, out: Path, **keys: Any) -> Config:
    """One AP query into a filesystem sink (which asks for the whole document) and stdout; no
    redelivery window (``redeliver_keep = "0s"``), so what the state keeps is what chains need."""
    source = ap_source(base, ["out", "console"], checkpoint_every=CHECKPOINT_EVERY, **keys)
    sinks = [{"name": "out", "kind": "filesystem", "root": str(out)}, {"name": "console", "kind": "stdout"}]
    config = one_source(tmp_path, source | {"queries": [{"name": "all", "level": "ru"}]}, sinks)
    return config.model_copy(update={"daemon": config.daemon.model_copy(update={"redeliver_keep": 0.0})})


def stored(state: Path) -> dict[str, bytes]:
    """The payloads in a state directory, by sha256."""
    return {p.name: p.read_bytes() for p in (state / "blobs").glob("*/*")}


def truth_bytes(replay: ApServer) -> bytes:
    """AP's whole answer now, as the canonical snapshot."""
    races = {race_key(r): r for r in replay.full_races({"level": "ru"})}
    return dump_sorted({"electionDate": "2026-11-03", "races": [races[k] for k in sorted(races)]})


async def test_deltas_are_kept_and_read_back_whole(
    ap: tuple[ApServer, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Versions between checkpoints are kept as their changed races (far smaller than the
    snapshot); the filesystem sink's copy of every version is AP's whole answer byte for byte;
    once a checkpoint is current and everything is delivered, the chains before it are let go."""
    replay, base = ap
    out = tmp_path / "out"
    written: list[tuple[int, int]] = []  # (stored bytes, whole bytes) per version
    async with opened(ap_night(tmp_path, base, out)) as daemon:
        while len(written) < 12:
            before = stored(tmp_path / "state")
            assert await daemon.run_once()
            new = {sha: body for sha, body in stored(tmp_path / "state").items() if sha not in before}
            latest = (out / "ap" / "all" / "latest.json").read_bytes()
            assert latest == truth_bytes(replay)
            if new:  # a step may change no race
                written.append((sum(len(b) for b in new.values()), len(latest)))
            replay.election.advance()
        kept = stored(tmp_path / "state")
    events = stdout_events(capsys.readouterr().out)
    assert [e["sequence"] for e in events] == list(range(1, 13))
    checkpoints = [n for n, (size, whole) in enumerate(written) if size == whole]
    assert checkpoints == [0, 4, 8]  # the first, then every CHECKPOINT_EVERY versions
    deltas = [(size, whole) for n, (size, whole) in enumerate(written) if n not in checkpoints]
    assert all(0 < size < whole for size, whole in deltas)
    assert sum(size for size, _ in deltas) < 0.4 * sum(whole for _, whole in deltas)
    assert len(kept) == 4  # the current chain only: checkpoint 9 and deltas 10-12
    assert sum(1 for body in kept.values() if body.startswith(DELTA_MARK)) == 3


async def test_a_restart_mid_chain_continues_the_same_snapshot_and_announces_nothing_twice(
    ap: tuple[ApServer, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Stopped between checkpoints, pollerd reads its snapshot back from checkpoint and deltas:
    the next version is the next sequence, AP's whole answer, under new ids only, and no race
    call is told again."""
    replay, base = ap
    config = ap_night(tmp_path, base, tmp_path / "out")
    async with opened(config) as daemon:
        for _ in range(6):
            await daemon.run_once()
            replay.election.advance(3)
    first = stdout_events(capsys.readouterr().out)
    async with opened(config) as daemon:
        assert await daemon.run_once()
    again = stdout_events(capsys.readouterr().out)
    assert [e["sequence"] for e in again] == [len(first) + 1]
    assert (tmp_path / "out" / "ap" / "all" / "latest.json").read_bytes() == truth_bytes(replay)
    told = {(f["type"], f["key"], f.get("candidate")) for e in first for f in e.get("election", [])}
    told_again = {(f["type"], f["key"], f.get("candidate")) for e in again for f in e.get("election", [])}
    assert not told & told_again
    assert {e["event_id"] for e in again}.isdisjoint(e["event_id"] for e in first)


async def test_a_redelivered_delta_version_gives_the_bytes_it_gave_before(
    ap: tuple[ApServer, str], tmp_path: Path
) -> None:
    """``redeliver`` of a version kept as a delta (not the newest) writes the same whole bytes
    the sink got the first time."""
    replay, base = ap
    out = tmp_path / "out"
    config = ap_night(tmp_path, base, out)
    async with opened(config) as daemon:
        for _ in range(7):
            await daemon.run_once()
            replay.election.advance(2)
    folder = out / "ap" / "all"
    events = sorted(
        (json.loads(p.read_bytes()) for p in folder.glob("2*.event.json")), key=lambda e: e["sequence"]
    )
    sixth = events[5]  # checkpoint at 5, so 6 is a delta, and 7 is the newest
    first_copy = next(folder.glob(f"*-{sixth['sha256'][:8]}.json")).read_bytes()
    for path in folder.glob(f"*-{sixth['sha256'][:8]}.*"):
        path.unlink()
    with sqlite3.connect(tmp_path / "state" / "pollerd.sqlite3") as db:
        code, _ = redeliver_in(db, tmp_path / "state", sixth["event_id"], "out")
    assert code == 0
    async with opened(config) as daemon:
        await daemon.deliverer.drain()
    assert next(folder.glob(f"*-{sixth['sha256'][:8]}.json")).read_bytes() == first_copy


def toml(tmp_path: Path, base: str, database: str | None) -> Path:
    """The AP night as a config file (migrate-state reads one), SQLite or PostgreSQL."""
    path = tmp_path / ("pg.toml" if database else "sqlite.toml")
    daemon = f'state_dir = "{tmp_path / "state"}"\nmetrics = "off"\n'
    if database:
        daemon += f'database = "{database}"\n'
    path.write_text(
        f"[daemon]\n{daemon}\n"
        f'[[sources]]\nname = "ap"\nkind = "ap"\napi = "{base}"\nelection_date = "2026-11-03"\n'
        f'api_key = "ap-key"\nquota_per_minute = 1000\ncheckpoint_every = {CHECKPOINT_EVERY}\n'
        f'sinks = ["out"]\n[[sources.queries]]\nname = "all"\nlevel = "ru"\n\n'
        f'[[sinks]]\nname = "out"\nkind = "filesystem"\nroot = "{tmp_path / "out"}"\n'
    )
    return path


async def test_migrate_state_moves_a_state_with_deltas(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SQLite state mid-chain, with versions still pending for a blocked sink, moves into
    PostgreSQL: the pending versions (deltas) are delivered whole, and the next version continues
    the same snapshot as the next sequence."""
    from pollerd.config import load_config
    from pollerd.sim import SimServer
    from tests.conftest import AP_KEY

    server = SimServer()
    replay = ApServer(ApElection(steps=40), {AP_KEY}, quota_per_minute=1000, page_size=3)
    base = await server.serve(replay.app())
    try:
        sqlite_config = toml(tmp_path, base, None)
        sqlite_config.write_text(sqlite_config.read_text().replace("ap-key", AP_KEY))
        out = tmp_path / "out"
        async with opened(load_config(sqlite_config)) as daemon:
            for _ in range(3):
                await daemon.run_once()
                replay.election.advance(2)
            out.rename(tmp_path / "first")  # the versions so far, then the sink is blocked
            out.write_text("a file where the sink's folder should be")
            for _ in range(3):
                await daemon.run_once()
                replay.election.advance(2)
        pending_truth = truth_bytes(replay)
        pg = toml(tmp_path, base, postgres_url)
        pg.write_text(pg.read_text().replace("ap-key", AP_KEY))
        assert await asyncio.to_thread(main, ["migrate-state", "-c", str(pg)]) == 0
        out.unlink()
        replay.election.advance(2)
        async with opened(load_config(pg)) as daemon:
            await daemon.run_once()
            sequences = sorted(
                json.loads(p.read_bytes())["sequence"] for p in (out / "ap" / "all").glob("2*.event.json")
            )
    finally:
        await server.close()
    assert sequences == [4, 5, 6, 7]
    assert (out / "ap" / "all" / "latest.json").read_bytes() == truth_bytes(replay)
    assert pending_truth != truth_bytes(replay)
