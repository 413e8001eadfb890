"""``pollerd calls``: the desk from the shell. ``list`` shows AP's calls waiting for the desk, the
desk's standing calls and the conflicts; ``accept``, ``call``, ``withdraw`` and ``override`` take a
decision; ``log`` prints every decision with who made it, when, and what it replaced.

A decision is applied by the daemon that polls its source: with SQLite, the running daemon is
handed the decision (``handoff``) and answers with what became of it; with PostgreSQL, the
command keeps it in the database, and the replica holding the source applies it within a second.
With no daemon running, it is kept and applied when one starts.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import sqlite3
from datetime import UTC, datetime
from typing import Any

from pollerd.config import Config
from pollerd.daemon import desk_work, handoff
from pollerd.desk.board import desk_board, empty_board
from pollerd.desk.book import Decision
from pollerd.store.sqlite import desk as sqlite_desk
from pollerd.store.view import viewing


def ap_source(config: Config, named: str | None) -> str | tuple[int, str]:
    """The ``ap`` source a command is about: the one named, or the only one."""
    sources = [s.name for s in config.sources if s.kind == "ap"]
    if named is not None:
        return (
            named
            if named in sources
            else (2, f"no ap source is called {named!r} (ap sources: {_names(sources)})")
        )
    if len(sources) == 1:
        return sources[0]
    return 2, f"name the source with --source (ap sources: {_names(sources)})"


def made_by() -> str:
    """Who decides from this shell: the OS user."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def take_decision(config: Config, fields: dict[str, Any]) -> tuple[int, str]:
    """Keep a decision and say what became of it: (exit code, message)."""
    who = made_by()
    decision = desk_work.decision_of(fields, who)
    if isinstance(decision, str):
        return 2, decision
    if config.daemon.database is not None:
        return asyncio.run(_decide_in_database(config, decision))

    def here(db: sqlite3.Connection) -> tuple[int, str]:  # no daemon runs: kept for the next
        told = desk_work.answer(sqlite_desk.add_decision(db, decision))
        return int(told["code"]), str(told["message"])

    return handoff.carried_out(
        config.daemon.state_dir,
        {"decide": fields, "made_by": who},
        here,
        "the running pollerd (pid {pid}) did not answer in time: "
        "`pollerd calls log` says whether the decision was taken",
    )


async def _decide_in_database(config: Config, decision: Decision) -> tuple[int, str]:
    from pollerd.store.postgres.store import PgStore  # psycopg, only where there is a database

    store = PgStore.configured(config.daemon, max_connections=1)
    await store.open()
    try:
        kept = await store.add_decision(decision)
        told = desk_work.answer(await desk_work.settled(store, kept, desk_work.ANSWER_WITHIN))
    finally:
        await store.close()
    return int(told["code"]), str(told["message"])


async def collect_calls(config: Config, source: str) -> dict[str, Any]:
    """What the desk looks at: AP's calls waiting for it, its standing calls, the conflicts."""
    async with viewing(config.daemon) as view:
        return empty_board(source) if view is None else await desk_board(view, source)


def print_calls(config: Config, source: str, as_json: bool) -> int:
    """Print the desk's view of a source (or JSON)."""
    report = asyncio.run(collect_calls(config, source))
    if as_json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{source}: {len(report['pending'])} AP call(s) waiting for the desk")
    for row in report["pending"]:
        print(
            f"  {row['race_key']:<16} {row['where']}: AP calls it for {row['candidate']} ({row['party']})"
            f" at {row['at'] or '?'}; accept with: pollerd calls accept {row['race_key']}"
        )
    print(f"the desk's calls: {len(report['desk'])}")
    for row in report["desk"]:
        print(f"  {row['race']:<16} {row['where']}: {row['candidate']} ({row['party']})")
    if report["conflicts"]:
        print(f"CONFLICTS: {len(report['conflicts'])}")
        for row in report["conflicts"]:
            print(f"  {row['race_key']:<16} {row['where']}: AP says {row['ap']}, the desk {row['desk']}")
    for waiting in report.get("waiting", []):
        print(f"  decision {waiting['id']} ({waiting['action']} {waiting['race']}) not applied yet")
    return 0


def print_log(config: Config, source: str, as_json: bool) -> int:
    """Print every decision of a source, oldest first (or JSON)."""

    async def read() -> list[Decision]:
        async with viewing(config.daemon) as view:
            return [] if view is None else await view.decisions(source)

    decisions = asyncio.run(read())
    if as_json:
        print(json.dumps([d.to_json() for d in decisions], indent=2))
        return 0
    if not decisions:
        print(f"{source}: no decisions of the desk")
    for d in decisions:
        what = " ".join(x for x in (d.action, d.race, d.candidate or "") if x)
        named = f" name={d.name!r}" if d.name else ""
        party = f" party={d.party!r}" if d.party else ""
        replaced = (
            f"; replaced {d.replaced or 'no call'}"
            if d.status == "applied" and d.action != "override"
            else ""
        )
        print(
            f"{d.id:>4} {_iso(d.made_at)} {d.made_by}: {what}{named}{party} -> {d.status}"
            f"{': ' + d.outcome if d.outcome else ''}{replaced}"
            f"{' (' + d.note + ')' if d.note else ''}"
        )
    return 0


def _names(names: list[str]) -> str:
    return ", ".join(names) or "none"


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
