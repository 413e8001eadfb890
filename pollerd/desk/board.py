"""What the desk looks at, from whatever reads the state (the daemon's store, or the command
line's read-only view): AP's calls waiting for it, its standing calls, the conflicts, and the
decisions not applied yet."""

from __future__ import annotations

from typing import Any, Protocol

from pollerd.desk.book import Decision, DeskBook


class DeskReads(Protocol):
    """The two reads the board needs (``StateStore`` and ``StateView`` both have them)."""

    async def decisions(self, source: str) -> list[Decision]: ...

    async def latest_told(self, source: str, prefix: str) -> dict[str, dict[str, Any]]: ...


async def desk_board(reads: DeskReads, source: str) -> dict[str, Any]:
    """The desk's view of a source, as ``calls list --json`` prints it."""
    decisions = await reads.decisions(source)
    pending = await reads.latest_told(source, "pending:")
    conflicts = await reads.latest_told(source, "conflict:")
    book = DeskBook.of(decisions)
    return {
        "source": source,
        "pending": [
            _row(told) for told in pending.values() if told["state"] and told["key"] not in book.calls
        ],
        "desk": [
            {"race": race, "state": call.state, **_call_words(call.fields)}
            for race, call in sorted(book.calls.items())
        ],
        "conflicts": [_row(told) for told in conflicts.values() if told["state"]],
        "waiting": [d.to_json() for d in decisions if d.status == "pending"],
    }


def empty_board(source: str) -> dict[str, Any]:
    """The board of a source with no state yet."""
    return {"source": source, "pending": [], "desk": [], "conflicts": [], "waiting": []}


def _row(told: dict[str, Any]) -> dict[str, Any]:
    new = told.get("new") or {}
    return {
        "race_key": told["key"],
        "where": f"{new.get('state') or ''} {new.get('race') or ''}".strip(),
        "candidate": new.get("candidate"),
        "candidate_id": new.get("candidate_id"),
        "party": new.get("party"),
        "at": new.get("ap_called_at") or told.get("at"),
        "ap": new.get("ap_state") or told["state"],
        "desk": new.get("desk_candidate") or new.get("desk_state"),
        "state": told["state"],
    }


def _call_words(fields: dict[str, Any]) -> dict[str, Any]:
    where = f"{fields.get('state') or ''} {fields.get('race') or ''}".strip()
    return {"where": where, "candidate": fields.get("candidate"), "party": fields.get("party")}
