"""The ``pollerd`` command: parse arguments, call the right piece, turn the outcome into an exit code."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from pollerd import __version__
from pollerd.commands.calls import ap_source, print_calls, print_log, take_decision
from pollerd.commands.deliveries import print_deliveries, redeliver
from pollerd.commands.demo import DEFAULT_SPEED, run_demo, serve_simulator
from pollerd.commands.healthcheck import check_health
from pollerd.commands.migrate import migrate_state
from pollerd.commands.replay import run_replay
from pollerd.commands.status import plural, print_status
from pollerd.config import Config, ConfigError, load_config, load_report_config
from pollerd.daemon.app import Daemon
from pollerd.daemon.signals import reload_on_sighup, stop_on_signals
from pollerd.daemon.state_open import StartupError
from pollerd.polling.budget_plan import plan_budgets
from pollerd.replay.server import ReplayOptions
from pollerd.sim.fso_content import FULL, SMALL
from pollerd.sim.night_recording import generate_random_night
from pollerd.store.lock import StateLocked
from pollerd.telemetry.logs import configure_logging

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2
DEMO_CONFIG = Path(__file__).resolve().parent / "sim" / "data" / "demo.toml"  # in the package


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = _parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except ConfigError as exc:
        print("invalid configuration:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_CONFIG
    except StateLocked as exc:
        print(f"pollerd cannot start: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except StartupError as exc:
        print(f"pollerd cannot start: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_OK
    except BrokenPipeError:  # `pollerd status | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED


_CONFIG_HELP = "the TOML config file"
_Command = Callable[..., argparse.ArgumentParser]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pollerd", description="Watch election-data feeds and push only what changed."
    )
    parser.add_argument("--version", action="version", version=f"pollerd {__version__}")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    def command(name: str, help_text: str, handler: object, config: bool = True) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        if config:
            sub.add_argument("-c", "--config", type=Path, required=True, help=_CONFIG_HELP)
        return sub

    _daemon_commands(command)
    _report_commands(command)
    _simulation_commands(command)
    return parser


def _daemon_commands(command: _Command) -> None:
    command("run", "Run the daemon until SIGTERM or SIGINT (SIGHUP re-reads the config).", _run)
    command(
        "once",
        "Poll every source once, deliver everything pending, exit (1 if a source or delivery failed).",
        _once,
    )
    check = command(
        "check-config",
        "Validate a config file: exit 0, or print every problem with its key path and exit 2.",
        _check_config,
        config=False,
    )
    check.add_argument("file", type=Path, help=_CONFIG_HELP)
    health = command(
        "healthcheck",
        "Ask the running daemon's /healthz: exit 0 if healthy, else 1 (Docker HEALTHCHECK).",
        _healthcheck,
    )
    health.add_argument("--timeout", type=float, default=5.0, help="seconds to wait (default 5)")


def _report_commands(command: _Command) -> None:
    status = command("status", "Show what the state directory knows about every resource.", _status)
    deliveries = command(
        "deliveries", "Show each sink's outbox: pending, dead and superseded deliveries.", _deliveries
    )
    for report in (status, deliveries):
        report.add_argument("--json", action="store_true", help="print JSON instead of a table")
    redeliver = command("redeliver", "Send deliveries again: one event's, or every dead one.", _redeliver)
    which = redeliver.add_mutually_exclusive_group(required=True)
    which.add_argument("event_id", nargs="?", help="the event to send again")
    which.add_argument("--dead", action="store_true", help="every dead-lettered delivery")
    redeliver.add_argument("--sink", help="only to this sink")
    _calls_command(command)
    command(
        "migrate-state",
        "Move the SQLite state into the PostgreSQL database [daemon] database names (daemon stopped).",
        _migrate_state,
    )


def _calls_command(command: _Command) -> None:
    calls = command(
        "calls",
        "The desk: AP's calls held for it, its own calls and overrides, its log.",
        _calls,
        config=False,
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-c", "--config", type=Path, required=True, help=_CONFIG_HELP)
    common.add_argument("--source", help="the ap source (needed where there are several)")
    decided = argparse.ArgumentParser(add_help=False, parents=[common])
    decided.add_argument("--note", help="a note kept with the decision")
    actions = calls.add_subparsers(dest="action", required=True, metavar="ACTION")
    race_help = "the race, as `calls list` shows it (STATE:raceID:raceType, e.g. PA:0:G)"

    def action(name: str, help_text: str, parent: argparse.ArgumentParser) -> argparse.ArgumentParser:
        return actions.add_parser(name, help=help_text, description=help_text, parents=[parent])

    for report, help_text in (
        ("list", "AP's calls waiting for the desk, the desk's calls, the conflicts"),
        ("log", "every decision: who made it, when, what it did and what it replaced"),
    ):
        action(report, help_text, common).add_argument("--json", action="store_true", help="print JSON")
    action("accept", "accept AP's call of a race", decided).add_argument("race", help=race_help)
    made = action("call", "the desk's own call of a race (before AP, or otherwise)", decided)
    made.add_argument("race", help=race_help)
    made.add_argument("candidate", help="the winner's AP candidate ID")
    action("withdraw", "withdraw the desk's call of a race", decided).add_argument("race", help=race_help)
    override = action("override", "publish a candidate's name or party otherwise", decided)
    override.add_argument("race", help=race_help)
    override.add_argument("candidate", help="the candidate's AP candidate ID")
    override.add_argument("--name", help="the name to publish")
    override.add_argument("--party", help="the party to publish")


def _simulation_commands(command: _Command) -> None:
    sim = command(
        "sim", "Serve the simulated FSO election night and the AP replay on 127.0.0.1.", _sim, config=False
    )
    sim.add_argument("--port", type=int, default=8000, help="FSO CKAN API port (default 8000)")
    sim.add_argument("--ap-port", type=int, default=8001, help="AP API port (default 8001)")
    sim.add_argument("--dc-port", type=int, default=8002, help="Democracy Club API port (default 8002)")
    demo = command(
        "demo",
        "Play the simulated election nights against the daemon; print each change and a summary.",
        _demo,
        config=False,
    )
    demo.add_argument(
        "-c",
        "--config",
        type=Path,
        default=DEMO_CONFIG,
        help="the demo config (default: the one in the package, pollerd/sim/data/demo.toml)",
    )
    demo.add_argument(
        "--keep-state",
        action="store_true",
        help="continue the last demo's state (default: start afresh, removing it and its output)",
    )
    demo.add_argument(
        "--duration",
        type=float,
        default=None,
        help="stop after this many seconds (default: when the night is over)",
    )
    replay = command(
        "replay",
        "Serve a recording (record = ...) as the upstreams it came from, on local ports, at any speed.",
        _replay,
        config=False,
    )
    replay.add_argument("recording", type=Path, help="the recording folder ([daemon] record)")
    replay.add_argument("--speed", type=float, default=1.0, help="how many times faster (default 1)")
    replay.add_argument("--from", dest="begin", help="start here: a time (ISO 8601) or a duration in (90m)")
    replay.add_argument("--to", dest="until", help="stop here: a time (ISO 8601) or a duration in (5h)")
    replay.add_argument(
        "--port", type=int, default=0, help="the control port; the upstreams on the ports after it (0: any)"
    )
    replay.add_argument("--config", type=Path, help="write a ready configuration pointing at the replay")
    replay.add_argument("--zero-counts", action="store_true", help="serve AP results with zero counts")
    held = replay.add_mutually_exclusive_group()
    held.add_argument(
        "--paused",
        action="store_true",
        help='start held at the beginning until POST /control {"resume": true}',
    )
    held.add_argument(
        "--start-on-request", action="store_true", help="start the night at the first request it receives"
    )
    generate = command(
        "generate-night",
        "Write a recording of a random FSO night (plausible progress, for rehearsing before a real one).",
        _generate_night,
        config=False,
    )
    generate.add_argument("recording", type=Path, help="the folder to write")
    generate.add_argument("--seed", type=int, default=1, help="which random night (default 1)")
    generate.add_argument(
        "--small", action="store_true", help="small files (60 communes) instead of real sizes"
    )
    for simulation, until in ((sim, ""), (demo, ": about three minutes")):
        simulation.add_argument(
            "--speed",
            type=float,
            default=DEFAULT_SPEED,
            help=f"how many times faster than real time (default {DEFAULT_SPEED:g}{until})",
        )


def _load(path: Path) -> Config:
    config = load_config(path)
    daemon = config.daemon
    configure_logging(daemon.log_format, daemon.log_level, config.secret_values())
    return config


def _check_config(args: argparse.Namespace) -> int:
    missing: list[str] = []
    config = load_config(args.file, missing)
    print(f"{args.file}: OK ({plural(len(config.sources), 'source')}, {plural(len(config.sinks), 'sink')})")
    for fit in plan_budgets(config.sources).values():
        if fit.limited:
            print(f"  note: the schedule does not fit the request budget; {fit.words()}")
    for what in dict.fromkeys(missing):
        print(f"  note: {what}; run and once need it")
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:
    config = _load(args.config)
    asyncio.run(_serve(config, args.config))
    return EXIT_OK


async def _serve(config: Config, path: Path) -> None:
    stop = stop_on_signals()
    daemon = Daemon(config)
    reload_on_sighup(daemon, path)
    try:
        await daemon.open()
        await daemon.run(stop)
    finally:
        await daemon.close()


def _once(args: argparse.Namespace) -> int:
    config = _load(args.config)

    async def once() -> bool:
        daemon = Daemon(config)
        try:
            await daemon.open()
            return await daemon.run_once()
        finally:
            await daemon.close()

    return EXIT_OK if asyncio.run(once()) else EXIT_FAILED


def _status(args: argparse.Namespace) -> int:
    return print_status(_reading(args.config), as_json=args.json)


def _healthcheck(args: argparse.Namespace) -> int:
    healthy, message = check_health(load_report_config(args.config), args.timeout)
    print(message, file=sys.stdout if healthy else sys.stderr)
    return EXIT_OK if healthy else EXIT_FAILED


def _deliveries(args: argparse.Namespace) -> int:
    return print_deliveries(_reading(args.config), as_json=args.json)


def _reading(path: Path) -> Config:
    """The config of a report: no secret resolved but the database's, and those that did
    resolve masked in what it prints (errors kept by an older version may hold one)."""
    return load_report_config(path)


def _redeliver(args: argparse.Namespace) -> int:
    code, message = redeliver(load_report_config(args.config), args.event_id, args.sink)
    print(message, file=sys.stderr if code else sys.stdout)
    return code


def _calls(args: argparse.Namespace) -> int:
    config = load_report_config(args.config)
    source = ap_source(config, args.source)
    if isinstance(source, tuple):
        print(source[1], file=sys.stderr)
        return source[0]
    if args.action == "list":
        return print_calls(config, source, args.json)
    if args.action == "log":
        return print_log(config, source, args.json)
    fields = {
        "source": source,
        "action": args.action,
        "race": args.race,
        "candidate": getattr(args, "candidate", None),
        "name": getattr(args, "name", None),
        "party": getattr(args, "party", None),
        "note": getattr(args, "note", None),
    }
    code, message = take_decision(config, fields)
    print(message, file=sys.stderr if code else sys.stdout)
    return code


def _migrate_state(args: argparse.Namespace) -> int:
    code, message = migrate_state(load_config(args.config))
    print(message, file=sys.stderr if code else sys.stdout)
    return code


def _sim(args: argparse.Namespace) -> int:
    configure_logging("auto", "info")
    asyncio.run(serve_simulator(args.port, args.ap_port, args.dc_port, args.speed))
    return EXIT_OK


def _demo(args: argparse.Namespace) -> int:
    config = _load(args.config)
    return run_demo(config, args.duration, args.speed, args.keep_state)


def _replay(args: argparse.Namespace) -> int:
    configure_logging("auto", "info")
    try:
        options = ReplayOptions(
            args.speed, args.begin, args.until, args.zero_counts, args.paused, args.start_on_request
        )
        return run_replay(args.recording, options, args.port, args.config)
    except ValueError as exc:  # a speed or a moment that cannot be
        print(f"pollerd replay: {exc}", file=sys.stderr)
        return EXIT_CONFIG


def _generate_night(args: argparse.Namespace) -> int:
    generated = generate_random_night(args.recording, args.seed, SMALL if args.small else FULL)
    print(
        f"{args.recording}: {generated.answers} answers, {generated.versions} versions "
        f"({generated.body_bytes / 1e6:.1f} MB); replay it with: pollerd replay {args.recording}"
    )
    return EXIT_OK
