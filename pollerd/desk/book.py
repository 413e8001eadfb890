"""What the desk has decided: each decision as kept (the audit log), and the desk's standing
calls and candidate overrides of one source, as they follow from the decisions applied so far."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

DESK_RESOURCE = "_desk"  # a source's decisions, as versions (never a query's name: those start
# with a letter or a digit)
Action = Literal["accept", "call", "withdraw", "override"]
ACTIONS: tuple[Action, ...] = ("accept", "call", "withdraw", "override")


@dataclass(frozen=True)
class Decision:
    """One decision of the desk, as kept. ``status``: ``pending`` until the poller holding the
    source applies it, then ``applied`` (``event_id``: the event that announced it, if any) or
    ``refused`` (``outcome`` says why). ``state``: the desk's call of the race once applied
    (``X:<candidate ids>``; empty: the desk has no call of it); ``replaced``: the one before;
    ``call``: the call's fields as announced (candidate, party, race)."""

    id: int
    source: str
    race: str
    action: Action
    made_by: str
    made_at: float
    candidate: str | None = None
    name: str | None = None
    party: str | None = None
    note: str | None = None
    status: str = "pending"
    outcome: str | None = None
    event_id: str | None = None
    state: str | None = None
    replaced: str | None = None
    applied_at: float | None = None
    call: dict[str, Any] | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Decision:
        """The inverse of ``to_json`` (a stored row's body, with its id)."""
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{key: value for key, value in data.items() if key in known})

    def to_json(self) -> dict[str, Any]:
        """The decision as an event's payload and ``pollerd calls log --json`` show it."""
        return {
            "id": self.id,
            "source": self.source,
            "race": self.race,
            "action": self.action,
            "candidate": self.candidate,
            "name": self.name,
            "party": self.party,
            "note": self.note,
            "made_by": self.made_by,
            "made_at": self.made_at,
            "status": self.status,
            "outcome": self.outcome,
            "event_id": self.event_id,
            "state": self.state,
            "replaced": self.replaced,
            "applied_at": self.applied_at,
            "call": self.call,
        }


@dataclass(frozen=True)
class DeskCall:
    """The desk's standing call of a race: its state (``X:<ids>``) and the fields it was
    announced with (candidate, party, race name: what a conflict is told against)."""

    state: str
    fields: dict[str, Any]


@dataclass
class DeskBook:
    """The desk's standing calls (by race key) and candidate overrides (by candidate id) of one
    source. Read from the rules' thread while the loop applies a decision: each change replaces
    a whole mapping, never edits one in place."""

    calls: dict[str, DeskCall] = field(default_factory=dict)
    overrides: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def of(cls, decisions: list[Decision]) -> DeskBook:
        """The book as the applied decisions, in order, leave it."""
        book = cls()
        for decision in decisions:
            if decision.status == "applied":
                book.apply(decision, decision.call or {})
        return book

    def apply(self, decision: Decision, fields: dict[str, Any]) -> None:
        """Take an applied decision into the book (``fields``: its call as announced)."""
        if decision.action == "override" and decision.candidate:
            told = {k: v for k, v in (("name", decision.name), ("party", decision.party)) if v}
            self.overrides = self.overrides | {decision.candidate: told}
        elif decision.state:
            self.calls = self.calls | {decision.race: DeskCall(decision.state, fields)}
        elif decision.action != "override":
            self.calls = {race: call for race, call in self.calls.items() if race != decision.race}

    def shown(self, fields: dict[str, Any]) -> dict[str, Any]:
        """A call's fields with the candidate's name and party as the desk publishes them."""
        told = self.overrides.get(str(fields.get("candidate_id") or ""))
        if not told:
            return fields
        shown = dict(fields)
        if "name" in told:
            shown["ap_candidate"], shown["candidate"] = fields.get("candidate"), told["name"]
            shown["candidates"] = [
                told["name"] if name == fields.get("candidate") else name
                for name in fields.get("candidates") or []
            ]
        if "party" in told:
            shown["ap_party"], shown["party"] = fields.get("party"), told["party"]
        return shown
