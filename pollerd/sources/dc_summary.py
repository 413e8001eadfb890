"""What changed between two Democracy Club answers, in the words a newsroom uses: dates, ballots,
candidates, polling stations. Computed from the old and the new JSON; empty parts are left out."""

from __future__ import annotations

from typing import Any

from pollerd.election.dc import answer_ballots, dates

Document = dict[str, Any]


def postcode_summary(old: Document | None, new: Document) -> dict[str, Any]:
    """The difference between two /postcode (or /address) answers."""
    if old is None:
        return {
            "first": True,
            "dates": [d.get("date") for d in dates(new)],
            "ballots": sorted(answer_ballots(new)),
        }
    summary: dict[str, Any] = {}
    old_dates, new_dates = {d.get("date") for d in dates(old)}, {d.get("date") for d in dates(new)}
    _put(summary, "dates_added", sorted(new_dates - old_dates, key=str))
    _put(summary, "dates_removed", sorted(old_dates - new_dates, key=str))
    _ballot_changes(summary, answer_ballots(old), answer_ballots(new))
    _put(summary, "polling_station_changed", _stations_changed(old, new))
    if old.get("address_picker") != new.get("address_picker"):
        summary["address_picker"] = new.get("address_picker")
    _put(
        summary,
        "other",
        sorted(
            k for k in (old.keys() | new.keys()) - {"dates", "address_picker"} if old.get(k) != new.get(k)
        ),
    )
    return summary


def record_summary(old: Document | None, new: Document | None) -> dict[str, Any]:
    """The difference between two versions of one record (an election, a ballot)."""
    if new is None:
        return {"vanished": True}
    if old is None:
        return {"new": True}
    return {"changed": sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))}


def _candidate_change(old: Document, new: Document) -> dict[str, list[str]]:
    names_before, names_after = _names(old), _names(new)
    change = {}
    if names_after - names_before:
        change["added"] = sorted(names_after - names_before)
    if names_before - names_after:
        change["removed"] = sorted(names_before - names_after)
    return change


def _names(ballot: Document) -> set[str]:
    people = ballot.get("candidates") or ballot.get("candidacies") or []
    return {str((c.get("person") or {}).get("name", "?")) for c in people if isinstance(c, dict)}


def _ballot_changes(summary: dict[str, Any], before: dict[str, Any], after: dict[str, Any]) -> None:
    """Ballots added, removed and cancelled, and each kept ballot's candidate changes."""
    kept = sorted(after.keys() & before.keys())
    _put(summary, "ballots_added", sorted(after.keys() - before.keys()))
    _put(summary, "ballots_removed", sorted(before.keys() - after.keys()))
    cancelled = [b for b in kept if after[b].get("cancelled") and not before[b].get("cancelled")]
    _put(summary, "ballots_cancelled", cancelled)
    candidates = {b: _candidate_change(before[b], after[b]) for b in kept}
    _put(summary, "candidates", {b: change for b, change in candidates.items() if change})


def _stations_changed(old: Document, new: Document) -> list[Any]:
    """The dates whose polling station changed."""
    before = {d.get("date"): d.get("polling_station") for d in dates(old)}
    return sorted(
        (
            d.get("date")
            for d in dates(new)
            if d.get("date") in before and d.get("polling_station") != before[d.get("date")]
        ),
        key=str,
    )


def _put(summary: dict[str, Any], key: str, value: Any) -> None:
    if value:
        summary[key] = value
