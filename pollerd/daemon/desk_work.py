"""The daemon's side of the desk: a decision taken (from ``pollerd calls`` through the state
directory, or from the status page's form) is kept, applied at once where this daemon polls its
source, and answered with what became of it; decisions kept by others (another replica, the
command line writing to PostgreSQL) are applied within a second by whichever daemon holds the
source."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from pollerd.desk.book import ACTIONS, Decision
from pollerd.store.protocol import StateStore

WATCH_EVERY = 1.0
ANSWER_WITHIN = 10.0  # how long a decision made here waits for the replica that holds its source


@runtime_checkable
class DeskPoller(Protocol):
    """A poller that applies the desk's decisions (``ap``)."""

    async def apply_decisions(self) -> int: ...


def desk_pollers(pollers: Mapping[str, object]) -> dict[str, DeskPoller]:
    """The pollers of this daemon that have a desk, by source."""
    return {name: p for name, p in pollers.items() if isinstance(p, DeskPoller)}


async def apply_waiting(pollers: Mapping[str, object]) -> None:
    """Apply the waiting decisions of the sources polled here; then wait a second (the daemon
    runs this again and again)."""
    await asyncio.gather(*(p.apply_decisions() for p in desk_pollers(pollers).values()))
    await asyncio.sleep(WATCH_EVERY)


def decision_of(request: Mapping[str, Any], made_by: str) -> Decision | str:
    """A decision from a request's fields, or what is wrong with them."""
    action = request.get("action")
    if action not in ACTIONS:
        return f"action must be one of {', '.join(ACTIONS)}"
    source, race = request.get("source"), request.get("race")
    if not isinstance(source, str) or not source or not isinstance(race, str) or not race:
        return "a decision names its source and its race (STATE:raceID:raceType, as `calls list` shows)"
    candidate = request.get("candidate") or None
    if action in ("call", "override") and not candidate:
        return f"{action} names a candidate (its AP candidate ID)"

    def text(key: str) -> str | None:
        value = request.get(key)
        return str(value)[:200] if value else None

    return Decision(
        id=0,
        source=source,
        race=race,
        action=action,
        made_by=made_by[:100],
        made_at=time.time(),
        candidate=None if candidate is None else str(candidate),
        name=text("name"),
        party=text("party"),
        note=text("note"),
    )


async def take(
    store: StateStore, pollers: Mapping[str, object], decision: Decision, wait: float = ANSWER_WITHIN
) -> Decision:
    """Keep the decision, apply it here if this daemon polls its source, and wait (up to
    ``wait`` seconds) for it to be settled: the decision as it stands then."""
    kept = await store.add_decision(decision)
    poller = desk_pollers(pollers).get(decision.source)
    if poller is not None:
        await poller.apply_decisions()
    return await settled(store, kept, wait)


async def settled(store: StateStore, decision: Decision, wait: float) -> Decision:
    """The decision once settled, or as it stands after ``wait`` seconds."""
    deadline = time.monotonic() + wait
    while True:
        found = next((d for d in await store.decisions(decision.source) if d.id == decision.id), decision)
        if found.status != "pending" or time.monotonic() >= deadline:
            return found
        await asyncio.sleep(0.1)


def answer(decision: Decision) -> dict[str, Any]:
    """What the command line (or the form) is told: an exit code and a line."""
    if decision.status == "applied":
        told = f" (event {decision.event_id})" if decision.event_id else ""
        message = f"decision {decision.id}: {decision.outcome}{told}"
        return {"code": 0, "message": message, "decision": decision.to_json()}
    if decision.status == "refused":
        message = f"decision {decision.id} refused: {decision.outcome}"
        return {"code": 1, "message": message, "decision": decision.to_json()}
    return {
        "code": 0,
        "message": f"decision {decision.id} kept; no running pollerd polls {decision.source} "
        "now: it is applied when one does",
        "decision": decision.to_json(),
    }
