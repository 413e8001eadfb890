"""``pollerd sim`` and ``pollerd demo``: the simulated election nights alone, or with the daemon.

The FSO night (CKAN API and three file hosts) and the AP replay server are served where the demo
config points (the ``api`` of its fso and ap sources); the demo plays both, runs the daemon, and
ends with a summary against clients that download everything every poll.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import structlog

from pollerd.commands.replay import open_replay
from pollerd.config import Config, FilesystemSinkConfig, FsoSourceConfig
from pollerd.config.ap import ApSourceConfig
from pollerd.config.base import SourceBase
from pollerd.config.dc import DcSourceConfig
from pollerd.core.election import NUMBER_TYPES
from pollerd.core.waiting import wait_set
from pollerd.daemon.app import Daemon
from pollerd.daemon.signals import stop_on_signals
from pollerd.daemon.state_open import StartupError
from pollerd.polling.tally import PollerStatus
from pollerd.replay.server import Replay, ReplayOptions
from pollerd.replay.timeline import origin_of, request_key
from pollerd.sim import SimServer
from pollerd.sim.ap import ApElection, ApServer
from pollerd.sim.ckan import ACTION_PATH
from pollerd.sim.democracyclub import STEPS as DC_STEPS
from pollerd.sim.democracyclub import DcServer, DcWorld
from pollerd.sim.night import END, PACKAGE, START
from pollerd.sim.night_recording import BUILT_IN, CKAN
from pollerd.store.sqlite.schema import STATE_FILE

NIGHT_SECONDS = (END - START).total_seconds()
DEFAULT_SPEED = 270.0  # the 13 h 40 min night in about three minutes
SIM_AP_KEY = "sim-demo-key"
SIM_DC_KEY = "sim-demo-key"


@dataclass
class Simulation:
    """The demo's upstreams: the FSO night (a replay of the shipped recording), the AP
    simulator, Democracy Club; each optional."""

    night: Replay | None
    ap: ApServer | None
    dc: DcServer | None = None

    async def play(self, speed: float, stop: asyncio.Event) -> None:
        """Play every timeline over the same wall-clock time."""
        players = []
        if self.night is not None:
            players.append(_play_replay(self.night, speed, stop))
        if self.ap is not None:
            step = NIGHT_SECONDS / speed / self.ap.election.steps
            players.append(self.ap.play(step, stop))
        if self.dc is not None:
            players.append(self.dc.play(NIGHT_SECONDS / speed / (DC_STEPS + 1), stop))
        await asyncio.gather(*players)

    async def close(self) -> None:
        """Stop the FSO replay (the simulators stop with their server)."""
        if self.night is not None:
            await self.night.close()


async def _play_replay(replay: Replay, speed: float, stop: asyncio.Event) -> None:
    """The recorded night from its start, ``speed`` times faster, until it ends or ``stop``."""
    replay.clock.set_speed(speed)
    replay.clock.jump(replay.clock.start)
    while not stop.is_set() and not replay.clock.ended:
        await wait_set(stop, min(1.0, replay.clock.seconds_left()))


def listed_bytes(replay: Replay) -> int:
    """Bytes a client downloading every file the package lists now would pull."""
    now = replay.clock.now()
    package = replay.timelines.get((CKAN, f"{ACTION_PATH}?id={PACKAGE}"))
    served = package.at(now) if package is not None else None
    if served is None or served.body is None:
        return 0
    document = json.loads(replay.bodies.raw(served.body))
    total = 0
    for resource in document["result"]["resources"]:
        url = resource["url"].strip()
        timeline = replay.timelines.get((origin_of(url), request_key(url)))
        version = timeline.at(now) if timeline is not None else None
        total += version.size if version is not None and version.good else 0
    return total


def versions_published(replay: Replay) -> int:
    """Distinct file versions the recorded night served (an empty file before the first results
    is not published yet: no version)."""
    return len(
        {
            state.body
            for (origin, _), timeline in replay.timelines.items()
            if origin != CKAN
            for state in timeline.states
            if state.good and state.size > 0
        }
    )


async def open_simulation(
    server: SimServer,
    fso_port: int | None,
    ap_port: int | None,
    ap_keys: set[str],
    dc_port: int | None = None,
) -> Simulation:
    """Serve the FSO night's CKAN API, the AP replay and Democracy Club on their ports;
    StartupError (one line, the port named) when a port is taken."""
    try:
        return await _open_simulation(server, fso_port, ap_port, ap_keys, dc_port)
    except (OSError, StartupError) as exc:
        await server.close()
        if isinstance(exc, StartupError):
            raise
        raise StartupError(
            f"the simulator cannot listen: {exc.strerror}; stop what uses that port, or choose another"
        ) from None


async def _open_simulation(
    server: SimServer, fso_port: int | None, ap_port: int | None, ap_keys: set[str], dc_port: int | None
) -> Simulation:
    simulation = Simulation(None, None)
    try:
        if fso_port is not None:
            simulation.night = await open_replay(BUILT_IN, ReplayOptions(), ports={CKAN: fso_port})
        if ap_port is not None:
            simulation.ap = ApServer(ApElection(), ap_keys, quota_per_minute=600)
            await server.serve(simulation.ap.app(), ap_port)
        if dc_port is not None:
            simulation.dc = DcServer(DcWorld(), {SIM_DC_KEY})
            await server.serve(simulation.dc.app(), dc_port)
    except BaseException:
        await simulation.close()
        raise
    return simulation


async def serve_simulator(port: int, ap_port: int, dc_port: int, speed: float) -> None:
    """Serve every simulated upstream until the nights end, SIGTERM or SIGINT."""
    stop = stop_on_signals()
    server = SimServer()
    simulation = await open_simulation(server, port, ap_port, {SIM_AP_KEY}, dc_port)
    structlog.get_logger("pollerd.sim").info(
        "simulator listening",
        fso_api=f"http://127.0.0.1:{port}/api/3/action",
        fso_package="eidg-wahlen-2023",
        ap_api=f"http://127.0.0.1:{ap_port}",
        ap_key=SIM_AP_KEY,
        democracyclub_api=f"http://127.0.0.1:{dc_port}/api/v1",
        democracyclub_key=SIM_DC_KEY,
        minutes=round(NIGHT_SECONDS / speed / 60, 1),
    )
    try:
        await simulation.play(speed, stop)
    finally:
        await simulation.close()
        await server.close()


@dataclass(frozen=True)
class KindFigures:
    """What the daemon did against one kind of upstream, and what a naive client would have."""

    changes: int
    requests: int
    downloaded_bytes: int
    naive_bytes: int

    def words(self) -> str:
        """The figures in words."""
        share = self.downloaded_bytes / self.naive_bytes if self.naive_bytes else 0.0
        return (
            f"{self.requests} requests, {_mb(self.downloaded_bytes)} downloaded vs "
            f"{_mb(self.naive_bytes)} ({share:.1%})"
        )


@dataclass(frozen=True)
class DemoSummary:
    """What a demo run did, for the closing lines."""

    seconds: float
    versions_published: int
    url_switches: int
    fso: KindFigures | None
    ap: KindFigures | None
    dc: KindFigures | None = None
    election_events: dict[str, int] = field(default_factory=dict)  # by type, every source

    def lines(self) -> list[str]:
        """One line per upstream."""
        lines = []
        if self.fso is not None:
            lines.append(
                f"demo: {self.seconds:.0f}s, FSO: {self.fso.changes} changes seen of "
                f"{self.versions_published} versions published, {self.url_switches} URL "
                f"switches, {self.fso.words()} for a client that downloads every file "
                "every poll"
            )
        if self.ap is not None:
            lines.append(
                f"demo: {self.seconds:.0f}s, AP: {self.ap.changes} snapshot changes, "
                f"{self.ap.words()} for a client that fetches the full document every poll"
            )
        if self.dc is not None:
            lines.append(
                f"demo: {self.seconds:.0f}s, Democracy Club: {self.dc.changes} changes, "
                f"{self.dc.requests} requests"
            )
        counts = ", ".join(f"{n} {kind}" for kind, n in sorted(self.election_events.items()))
        lines.append(
            f"demo: {self.seconds:.0f}s, election events: {sum(self.election_events.values())}"
            + (f" ({counts})" if counts else "")
        )
        return lines


def _mb(count: int) -> str:
    return f"{count / 1e6:.1f} MB" if count >= 100_000 else f"{count / 1e3:.1f} kB"


def run_demo(config: Config, duration: float | None, speed: float, keep_state: bool = False) -> int:
    """Play the nights against the daemon, from a fresh state unless ``keep_state``; print the
    summary on stderr at the end."""
    for line in continuing(config) if keep_state else start_afresh(config):
        print(line, file=sys.stderr)
    summary = asyncio.run(_demo(config, duration, speed))
    for line in summary.lines():
        print(line, file=sys.stderr)
    return 0


async def _demo(config: Config, duration: float | None, speed: float) -> DemoSummary:
    stop = stop_on_signals()
    server = SimServer()
    fso = [s for s in config.sources if isinstance(s, FsoSourceConfig)]
    ap = [s for s in config.sources if isinstance(s, ApSourceConfig)]
    dc = [s for s in config.sources if isinstance(s, DcSourceConfig)]
    keys = {s.api_key.get_secret_value() for s in ap if s.api_key is not None}
    simulation = await open_simulation(
        server,
        _port(fso[0].api) if fso else None,
        _port(ap[0].api) if ap else None,
        keys,
        _port(dc[0].api) if dc else None,
    )
    loop = asyncio.get_running_loop()
    started = loop.time()
    if duration is not None:
        loop.call_later(duration, stop.set)
    interval = min(source.interval for source in config.sources)
    daemon = Daemon(config)
    player = asyncio.create_task(_play_then_stop(simulation, speed, stop, grace=3 * interval))
    fso_naive = asyncio.create_task(_naive_bytes(simulation, fso, [], stop))
    ap_naive = asyncio.create_task(_naive_bytes(simulation, [], ap, stop))
    try:
        await daemon.open()
        await daemon.run(stop)
    finally:
        stop.set()
        await daemon.close()
        await player
        naive = (await fso_naive, await ap_naive)
        await simulation.close()
        await server.close()
    return _summarise(daemon, simulation, loop.time() - started, naive, fso, ap, dc)


def _port(url: str) -> int:
    return urlsplit(url).port or 80


async def _play_then_stop(simulation: Simulation, speed: float, stop: asyncio.Event, grace: float) -> None:
    await simulation.play(speed, stop)
    if not stop.is_set():
        await asyncio.sleep(grace)  # the last versions still reach the daemon
        stop.set()


async def _naive_bytes(
    simulation: Simulation, fso: list[FsoSourceConfig], ap: list[ApSourceConfig], stop: asyncio.Event
) -> int:
    """What a client that downloads everything every interval would have pulled."""
    if not fso and not ap:
        return 0
    interval = min(s.interval for s in [*fso, *ap])
    total = 0
    while not stop.is_set():
        if fso and simulation.night is not None:
            total += await asyncio.to_thread(listed_bytes, simulation.night)
        if ap and simulation.ap is not None:
            total += sum(
                _full_document_size(simulation.ap, query.params())
                for source in ap
                for query in source.queries
            )
        await wait_set(stop, interval)
    return total


def _full_document_size(ap: ApServer, params: list[tuple[str, str]]) -> int:
    races = ap.full_races(dict(params))
    return len(json.dumps({"electionDate": ap.election.timestamp(), "races": races}).encode())


def _summarise(
    daemon: Daemon,
    simulation: Simulation,
    seconds: float,
    naive: tuple[int, int],
    fso: list[FsoSourceConfig],
    ap: list[ApSourceConfig],
    dc: list[DcSourceConfig],
) -> DemoSummary:
    def statuses(sources: Sequence[SourceBase]) -> list[PollerStatus]:
        return [daemon.pollers[s.name].status() for s in sources]

    def figures(sources: Sequence[SourceBase], requests: int, naive_bytes: int) -> KindFigures:
        done = statuses(sources)
        return KindFigures(
            sum(s.changes for s in done), requests, sum(s.downloaded_bytes for s in done), naive_bytes
        )

    night, replay = simulation.night, simulation.ap
    return DemoSummary(
        seconds=seconds,
        versions_published=versions_published(night) if night else 0,
        url_switches=sum(s.url_switches for s in statuses(fso)),
        fso=figures(fso, night.counts.requests, naive[0]) if fso and night else None,
        ap=figures(ap, len(replay.log), naive[1]) if ap and replay else None,
        dc=figures(dc, len(simulation.dc.log), 0) if dc and simulation.dc else None,
        election_events={  # the stories the demo prints (the numbers between them are not)
            kind: n
            for kind, n in sum(
                (Counter(s.election_events) for s in statuses([*fso, *ap, *dc])), Counter()
            ).items()
            if kind not in NUMBER_TYPES
        },
    )


def start_afresh(config: Config) -> list[str]:
    """Remove what an earlier demo left: its state directory (only one pollerd made: it holds
    the state database) and what its filesystem sinks wrote for its sources, so the night starts
    from its beginning, not from news of the last run. What was removed, in words."""
    removed = []
    state_dir = config.daemon.state_dir
    if (state_dir / STATE_FILE).exists():
        shutil.rmtree(state_dir)
        removed.append(str(state_dir))
    for sink in config.sinks:
        if isinstance(sink, FilesystemSinkConfig):
            for source in config.sources:
                written = sink.root / source.name
                if written.is_dir():
                    shutil.rmtree(written)
                    removed.append(str(written))
    if not removed:
        return []
    return [f"demo: starting afresh; removed the last run's {', '.join(removed)} (--keep-state continues it)"]


def continuing(config: Config) -> list[str]:
    """What ``--keep-state`` means, said once."""
    if not (config.daemon.state_dir / STATE_FILE).exists():
        return []
    return [f"demo: continuing the state in {config.daemon.state_dir} (the night's news may be old)"]
