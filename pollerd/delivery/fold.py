"""A sink's noise control for what moved: a race's batches smaller than ``min_votes``, or moving
the margin less than ``min_margin_change`` points, are folded into the next one the sink is told,
which then says everything since the last batch told (votes added, each candidate's share, the
margin before). Kept in memory: after a restart the first batch told is its own."""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from typing import Any

from pollerd.core.election import Fact
from pollerd.core.model import Event

_REMEMBERED = 4096  # views by event id: the deliverer asks more than once about one event


@dataclasses.dataclass(frozen=True)
class _Told:
    votes: dict[str, int]  # by candidate id
    margin: dict[str, Any] | None


class NumbersFold:
    """Folds small batches into the next (for one sink)."""

    def __init__(self, min_votes: int, min_margin_change: float) -> None:
        self._min_votes = min_votes
        self._min_margin = min_margin_change
        self._told: dict[tuple[str, str], _Told] = {}
        self._views: OrderedDict[str, Event | None] = OrderedDict()

    def view(self, event: Event) -> Event | None:
        """The event with its batches folded or told whole; None when nothing of it is left
        (the same answer every time it is asked about one event)."""
        if event.event_id in self._views:
            return self._views[event.event_id]
        facts = tuple(told for fact in event.election if (told := self._fold(event.source, fact)) is not None)
        view = (
            event
            if facts == event.election
            else dataclasses.replace(event, election=facts)
            if facts
            else None
        )
        self._views[event.event_id] = view
        while len(self._views) > _REMEMBERED:
            self._views.popitem(last=False)
        return view

    def _fold(self, source: str, fact: Fact) -> Fact | None:
        if fact.type != "votes_counted" or fact.new is None:
            return fact
        new = fact.new
        now = {c["candidate_id"]: int(c.get("votes") or 0) for c in new.get("candidates_batch") or []}
        last = self._told.get((source, fact.key))
        if last is None:  # the first batch seen: its own figures say what came before it
            base = {
                c["candidate_id"]: int(c.get("votes") or 0) - int(c.get("votes_added") or 0)
                for c in new.get("candidates_batch") or []
            }
            last = _Told(base, new.get("margin_before"))
            self._told[(source, fact.key)] = last
        added = {cid: votes - last.votes.get(cid, 0) for cid, votes in now.items()}
        total = sum(added.values())
        if abs(total) < self._min_votes or _moved(last.margin, new.get("margin_after")) < self._min_margin:
            return None
        self._told[(source, fact.key)] = _Told(now, new.get("margin_after"))
        if added == {c["candidate_id"]: c.get("votes_added") for c in new.get("candidates_batch") or []}:
            return fact  # nothing was folded into it
        batch = [
            c
            | {
                "votes_added": added[c["candidate_id"]],
                "share_of_batch": round(100 * added[c["candidate_id"]] / total, 1) if total > 0 else None,
            }
            for c in new.get("candidates_batch") or []
        ]
        shares = ", ".join(
            f"{c['candidate']} {c['share_of_batch']}%" for c in batch if c["share_of_batch"] is not None
        )
        return dataclasses.replace(
            fact,
            new=new
            | {
                "votes_added": total,
                "candidates_batch": batch,
                "batch_shares": shares,
                "margin_before": last.margin,
                "correction": any(votes < 0 for votes in added.values()),
                "folded": True,
            },
        )


def _moved(before: dict[str, Any] | None, after: dict[str, Any] | None) -> float:
    """How many points the margin moved (a lead that changed hands: both margins)."""
    points_after = float((after or {}).get("margin_points") or 0.0)
    points_before = float((before or {}).get("margin_points") or 0.0)
    if before is None or after is None or before.get("candidate_id") == after.get("candidate_id"):
        return abs(points_after - points_before)
    return points_after + points_before
