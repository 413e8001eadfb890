"""AP's calls as the desk wants them told: accepted as they come (``by: ap``), held for the desk
(``call_pending``), or, where the desk has a call of the race, set against it: AP agreeing says
nothing new, AP saying otherwise is a ``call_conflict`` and the desk's call stands."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from pollerd.core.election import Fact, Rules
from pollerd.desk.book import DeskBook

CALL_TYPES = frozenset({"race_called", "call_changed", "call_retracted", "runoff"})
Holds = Callable[[str, str, str], bool]  # (office, state, race key) -> AP's calls held for the desk


class DeskRules:
    """A source's rules, then the desk's judgement of their calls (``book`` is read at each
    version: a decision applied meanwhile counts from the next version on)."""

    def __init__(self, rules: Rules, holds: Holds, book: DeskBook) -> None:
        self._rules = rules
        self._holds = holds
        self.book = book
        self.held: dict[str, str] = {}  # race key -> AP's call held for the desk (replaced whole)

    def published(self) -> dict[str, str]:
        """The races whose published call is not AP's flag: the desk's calls, and AP's calls
        held for the desk (published as none until the desk takes them)."""
        book = self.book
        return {key: "" for key in self.held if key not in book.calls} | {
            key: call.state for key, call in book.calls.items()
        }

    def __call__(self, resource: str, old: Any, new: Any) -> list[Fact]:
        """The rules' facts, judged."""
        return self.judge(self._rules(resource, old, new))

    def judge(self, facts: list[Fact]) -> list[Fact]:
        """Each AP call told as the desk wants it; other facts as they are."""
        book = self.book
        judged = []
        for fact in facts:
            if fact.type not in CALL_TYPES:
                judged.append(fact)
                continue
            told = _shown(fact, book)
            desk = book.calls.get(fact.key)
            if desk is not None:
                judged.append(conflict(told, desk.state, desk.fields))
            elif self._holds(_text(fact.scope.get("office")), _text(fact.scope.get("state")), fact.key):
                judged.append(pending(told))
                held = {key: state for key, state in self.held.items() if key != fact.key}
                self.held = held | ({fact.key: fact.state} if fact.state else {})
            else:
                judged.append(dataclasses.replace(told, by="ap"))
        return judged


def pending(fact: Fact) -> Fact:
    """AP's call held for the desk: who AP calls (none: AP took its call back), and when."""
    new = dict(fact.new or {}) | {"ap_type": fact.type, "ap_called_at": fact.at}
    return dataclasses.replace(fact, type="call_pending", subject=f"pending:{fact.key}", new=new, by="ap")


def conflict(fact: Fact, desk_state: str, desk_fields: dict[str, Any]) -> Fact:
    """AP says otherwise than the desk's call: told loudly, and the desk's call stands. AP saying
    what the desk says ends a conflict (the empty state: news only where there was one)."""
    agrees = fact.state == desk_state
    new = dict(fact.new or {}) | {
        "ap_type": fact.type,
        "ap_state": fact.state,
        "desk_state": desk_state,
        "desk_candidate": desk_fields.get("candidate"),
        "desk_party": desk_fields.get("party"),
        "resolved": agrees,
    }
    return dataclasses.replace(
        fact,
        type="call_conflict",
        subject=f"conflict:{fact.key}",
        state="" if agrees else f"ap={fact.state};desk={desk_state}",
        new=new,
        by="ap",
    )


def _shown(fact: Fact, book: DeskBook) -> Fact:
    if not book.overrides:
        return fact
    return dataclasses.replace(
        fact,
        new=None if fact.new is None else book.shown(fact.new),
        old=None if fact.old is None else book.shown(fact.old),
    )


def _text(value: Any) -> str:
    return "" if value is None else str(value)
