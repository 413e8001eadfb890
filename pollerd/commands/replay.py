"""``pollerd replay DIR``: serve a recording until it ends (or SIGTERM/SIGINT), saying where to
point a configuration, or writing one."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path

from pollerd.core.waiting import wait_set
from pollerd.daemon.signals import stop_on_signals
from pollerd.daemon.state_open import StartupError
from pollerd.record.archive import read_archive
from pollerd.replay.bodies import Renderer
from pollerd.replay.clock import iso
from pollerd.replay.config_file import replay_sources, write_config
from pollerd.replay.server import Replay, ReplayOptions
from pollerd.sim.night_recording import RENDERERS


async def open_replay(
    root: Path,
    options: ReplayOptions,
    port: int = 0,
    ports: Mapping[str, int] | None = None,
    renderers: Mapping[str, Renderer] = RENDERERS,
) -> Replay:
    """Read the recording at ``root`` and serve it; StartupError (one line) when it cannot."""
    try:
        recordings = await asyncio.to_thread(read_archive, root)
        replay = Replay(recordings, options, renderers)
    except ValueError as exc:
        raise StartupError(f"cannot replay: {exc}") from None
    try:
        await replay.open(port, ports)
    except OSError as exc:
        raise StartupError(f"the replay cannot listen: {exc.strerror}; choose another --port") from None
    except ValueError as exc:  # a damaged recording: refused before anything is served
        raise StartupError(f"cannot replay: {exc}") from None
    return replay


def run_replay(root: Path, options: ReplayOptions, port: int, config: Path | None) -> int:
    """Serve until the night is over and a minute more, or until SIGTERM/SIGINT."""
    return asyncio.run(_replay(root, options, port, config))


async def _replay(root: Path, options: ReplayOptions, port: int, config: Path | None) -> int:
    stop = stop_on_signals()
    replay = await open_replay(root, options, port)
    try:
        sources = replay_sources(replay.recordings, replay.local_url, options.speed)
        if config is not None:
            write_config(config, sources)
        for line in _announcement(replay, sources, config):
            print(line, flush=True)
        while not stop.is_set():
            await wait_set(stop, 1.0)
    finally:
        await replay.close()
    return 0


def _announcement(replay: Replay, sources: list[dict[str, object]], config: Path | None) -> list[str]:
    clock = replay.clock
    minutes = (clock.until - clock.now()) / clock.speed / 60
    lines = [
        f"replaying {len(replay.recordings)} recorded source(s) from {iso(clock.now())} to "
        f"{iso(clock.until)} at {clock.speed:g}x: {minutes:.1f} minutes",
        f"control: GET {replay.control_url}/status, POST {replay.control_url}/control",
    ]
    for source in sources:
        where = {k: source[k] for k in ("api", "candidates_api", "urls") if k in source}
        lines.append(
            f"source {source['name']} ({source['kind']}): "
            + ", ".join(f"{k} = {v}" for k, v in where.items())
        )
    if config is not None:
        lines.append(f"wrote {config}: pollerd run -c {config}")
    if replay.options.zero_counts:
        lines.append("AP counts are zeroed (setZeroCounts)")
    if replay.options.paused:
        lines.append(
            f'held at {iso(clock.now())}: POST {replay.control_url}/control {{"resume": true}} starts it'
        )
    if replay.options.start_on_request:
        lines.append("held until the first request: the night starts when a client first asks")
    lines += [f"  {recorded} is served at {local}" for recorded, local in replay.local.items()]
    return lines
