"""Applying one decision of the desk to a race as AP's snapshot shows it now: refused (and why,
in words the desk reads), or the desk's call after it and the facts that announce it
(``by: desk``): what the published call of the race goes from and to, and whether AP and the desk
now disagree."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pollerd.core.election import Fact
from pollerd.desk.book import Decision, DeskBook
from pollerd.election.ap import Race, call_fields, call_state, candidates, scope


@dataclass(frozen=True)
class Verdict:
    """What a decision comes to: ``refusal`` (it changes nothing), or the desk's call after it
    (``state``: empty when the desk has none; ``fields``: the call as announced), the facts that
    announce it, and ``outcome``, what it did in words."""

    refusal: str | None = None
    state: str = ""
    fields: dict[str, Any] = field(default_factory=dict)
    facts: list[Fact] = field(default_factory=list)
    outcome: str = ""

    def settled(self, decision: Decision, replaced: str | None, now: float) -> Decision:
        """The decision as kept once this verdict is applied (or refused)."""
        if self.refusal is not None:
            return dataclasses.replace(decision, status="refused", outcome=self.refusal, applied_at=now)
        return dataclasses.replace(
            decision,
            status="applied",
            outcome=self.outcome,
            state=None if decision.action == "override" else self.state,
            replaced=replaced,
            applied_at=now,
            call=self.fields or None,
        )


def decide(decision: Decision, book: DeskBook, race: Race | None, held: bool) -> Verdict:
    """The verdict on ``decision`` for ``race`` (None: no snapshot of the source holds it);
    ``held``: the source holds AP's calls of this race for the desk."""
    if race is None:
        return Verdict(f"no race {decision.race} in what this source receives from AP")
    ap = call_state(race)
    desk = book.calls.get(decision.race)
    published = desk.state if desk is not None else "" if held else ap
    if decision.action == "override":
        return _override(decision, race)
    if decision.action == "accept":
        if not ap:
            return Verdict(f"AP does not call {decision.race} now: there is no call to accept")
        if desk is not None and desk.state == ap:
            return Verdict(f"the desk's call of {decision.race} is AP's already")
        if desk is None and not held:
            return Verdict(f"AP's calls of {decision.race} are accepted as they come: nothing to accept")
        after = ap
    elif decision.action == "call":
        known = {c["id"]: c for c in candidates(race)}
        if decision.candidate not in known:
            listed = ", ".join(f"{cid} {c['name']}" for cid, c in known.items()) or "none"
            return Verdict(f"no candidate {decision.candidate} in {decision.race} (candidates: {listed})")
        after = f"X:{decision.candidate}"
        if desk is not None and desk.state == after:
            return Verdict(f"the desk calls {decision.race} for {known[after[2:]]['name']} already")
    else:  # withdraw
        if desk is None:
            return Verdict(f"the desk has no call of {decision.race} to withdraw")
        after = ""
    fields = book.shown(call_fields(race, after)) if after else {}
    now_published = after if after else "" if held else ap
    facts = _told(decision, race, published, now_published, book)
    facts.append(_agreement(decision, race, ap, after, fields))
    return Verdict(state=after, fields=fields, facts=facts, outcome=_words(decision, race, after, fields))


def _override(decision: Decision, race: Race) -> Verdict:
    known = {c["id"]: c for c in candidates(race)}
    if decision.candidate not in known:
        return Verdict(f"no candidate {decision.candidate} in {decision.race}")
    if not decision.name and not decision.party:
        return Verdict("an override needs a name or a party")
    was = known[decision.candidate]
    shown = f"{decision.name or was['name']} ({decision.party or was['party']})"
    return Verdict(outcome=f"{was['name']} ({was['party']}) is shown as {shown}")


def _told(decision: Decision, race: Race, before: str, after: str, book: DeskBook) -> list[Fact]:
    """The published call of the race going from ``before`` to ``after``, by the desk."""
    if before == after:
        return []
    if not after:
        kind = "call_retracted"
    elif after.startswith("R:"):
        kind = "runoff"
    else:
        kind = "call_changed" if before.startswith("X:") else "race_called"
    key = decision.race
    new = book.shown(call_fields(race, after)) if after else call_fields(race, "")
    return [
        Fact(
            type=kind,
            key=key,
            subject=f"call:{key}",
            state=after,
            old=book.shown(call_fields(race, before)) if before else None,
            new=new | _who(decision),
            scope=scope(race),
            by="desk",
        )
    ]


def _agreement(decision: Decision, race: Race, ap: str, desk: str, fields: dict[str, Any]) -> Fact:
    """Whether AP and the desk disagree once the decision stands: a conflict where the desk calls
    the race otherwise than AP does, else the end of any conflict there was."""
    disagree = bool(desk and ap and ap != desk)
    new = call_fields(race, ap) | {
        "ap_state": ap,
        "desk_state": desk,
        "desk_candidate": fields.get("candidate"),
        "desk_party": fields.get("party"),
        "resolved": not disagree,
    }
    return Fact(
        type="call_conflict",
        key=decision.race,
        subject=f"conflict:{decision.race}",
        state=f"ap={ap};desk={desk}" if disagree else "",
        old=None,
        new=new | _who(decision),
        scope=scope(race),
        by="desk",
    )


def _who(decision: Decision) -> dict[str, Any]:
    return {
        "decided_by": decision.made_by,
        "decided_at": datetime.fromtimestamp(decision.made_at, UTC).isoformat(timespec="seconds"),
        "decision": decision.id,
        "note": decision.note,
    }


def _words(decision: Decision, race: Race, after: str, fields: dict[str, Any]) -> str:
    name = fields.get("race") or decision.race
    if not after:
        return f"the desk withdrew its call of {name}"
    who = fields.get("candidate") or after
    verb = "accepted AP's call of" if decision.action == "accept" else "called"
    return f"the desk {verb} {name} for {who}"
