"""What moved between two AP versions of a race, at its top reporting unit: the votes of the batch
(``votes_counted``, a correction when counts go down), the lead (``lead_changed``), AP's expected
vote crossing a mark (``expected_vote``), and v3's ``raceCallStatus`` (``race_status_changed``).

A field AP leaves out reads as its default (AP stopped sending zeros): a version that only drops
them announces nothing. Nothing is told of a race's first version: a batch needs one before it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pollerd.core.election import Fact
from pollerd.election.ap import Race, candidates, race_fields, scope, top_unit

EEVP_MARKS = (25, 50, 75, 90, 95, 99)


def number_facts(
    before: Mapping[str, Race] | None,
    after: Mapping[str, Race],
    keys: Iterable[str] | None = None,
    marks: tuple[int, ...] = EEVP_MARKS,
) -> list[Fact]:
    """What moved in each race (``keys``: only those, where the caller knows which changed)."""
    if before is None:
        return []
    facts: list[Fact] = []
    for key in sorted(after if keys is None else keys):
        new, old = after.get(key), before.get(key)
        if new is None or old is None or new is old:
            continue
        facts += race_numbers(key, old, new, marks)
    return facts


def race_numbers(key: str, old: Race, new: Race, marks: tuple[int, ...] = EEVP_MARKS) -> list[Fact]:
    """The numbers that moved in one race between two versions."""
    was, now = _count(old), _count(new)
    unit = top_unit(new)
    told = race_fields(new) | {
        "precincts_reporting_pct": unit.get("precinctsReportingPct"),
        "eevp": _eevp(new),
    }
    at = unit.get("lastUpdated")
    facts = []
    added = {cid: now.get(cid, (0, {}))[0] - was.get(cid, (0, {}))[0] for cid in {**was, **now}}
    if any(added.values()):
        facts.append(_batch(key, new, was, now, added, told, at))
    lead_was, lead_now = _lead(was), _lead(now)
    if lead_was is not None and lead_now is not None and lead_was["candidate_id"] != lead_now["candidate_id"]:
        facts.append(
            Fact(
                "lead_changed",
                key,
                f"lead:{key}",
                lead_now["candidate_id"],
                lead_was,
                told | lead_now,
                at,
                scope(new),
            )
        )
    mark_was, mark_now = _mark(_eevp(old), marks), _mark(_eevp(new), marks)
    if mark_now is not None and (mark_was is None or mark_now > mark_was):
        facts.append(
            Fact(
                "expected_vote",
                key,
                f"eevp:{key}",
                str(mark_now),
                None,
                told | {"mark": mark_now},
                at,
                scope(new),
            )
        )
    status_was, status_now = old.get("raceCallStatus"), new.get("raceCallStatus")
    if isinstance(status_was, str) and isinstance(status_now, str) and status_was != status_now:
        facts.append(
            Fact(
                "race_status_changed",
                key,
                f"status:{key}",
                status_now,
                {"race_call_status": status_was},
                told,
                at,
                scope(new),
            )
        )
    return facts


def _batch(
    key: str,
    race: Race,
    was: dict[str, tuple[int, dict[str, Any]]],
    now: dict[str, tuple[int, dict[str, Any]]],
    added: dict[str, int],
    told: dict[str, Any],
    at: str | None,
) -> Fact:
    total = sum(added.values())
    shares = [
        {
            "candidate": now.get(cid, was.get(cid, (0, {})))[1].get("name"),
            "candidate_id": cid,
            "party": now.get(cid, was.get(cid, (0, {})))[1].get("party"),
            "votes_added": votes,
            "share_of_batch": round(100 * votes / total, 1) if total > 0 else None,
            "votes": now.get(cid, (0, {}))[0],
        }
        for cid, votes in sorted(added.items(), key=lambda item: -now.get(item[0], (0, {}))[0])
    ]
    state = ",".join(f"{cid}={votes}" for cid, (votes, _) in sorted(now.items()))
    return Fact(
        "votes_counted",
        key,
        f"votes:{key}",
        state,
        None,
        told
        | _flat(_lead(now))
        | {
            "votes_added": total,
            "candidates_batch": shares,
            "batch_shares": ", ".join(
                f"{s['candidate']} {s['share_of_batch']}%" for s in shares if s["share_of_batch"] is not None
            ),
            "margin_before": _lead(was),
            "margin_after": _lead(now),
            "correction": any(votes < 0 for votes in added.values()),
        },
        at,
        scope(race),
    )


def _flat(lead: dict[str, Any] | None) -> dict[str, Any]:
    """The lead as flat fields a template can name (``leader``, ``margin_votes``, ...)."""
    if lead is None:
        return {}
    return {
        "leader": lead["candidate"],
        "leader_party": lead["party"],
        "margin_votes": lead["margin_votes"],
        "margin_points": lead["margin_points"],
    }


def _count(race: Race) -> dict[str, tuple[int, dict[str, Any]]]:
    """Each candidate's votes at the top unit, by id (a candidate left out: not counted)."""
    return {c["id"]: (c["votes"], c) for c in candidates(race) if c["id"]}


def _lead(count: dict[str, tuple[int, dict[str, Any]]]) -> dict[str, Any] | None:
    """Who leads and by how much (None: no votes yet, or a tie at the top)."""
    ranked = sorted(count.items(), key=lambda item: -item[1][0])
    if not ranked or ranked[0][1][0] <= 0 or (len(ranked) > 1 and ranked[0][1][0] == ranked[1][1][0]):
        return None
    first = ranked[0][1]
    second = ranked[1][1][0] if len(ranked) > 1 else 0
    total = sum(votes for votes, _ in count.values())
    return {
        "candidate": first[1].get("name"),
        "candidate_id": ranked[0][0],
        "party": first[1].get("party"),
        "margin_votes": first[0] - second,
        "margin_points": round(100 * (first[0] - second) / total, 1) if total else None,
    }


def _eevp(race: Race) -> float | None:
    """AP's expected vote counted (v3 ``eevp``, on the race or its top unit), as a percentage."""
    for value in (race.get("eevp"), top_unit(race).get("eevp")):
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


def _mark(eevp: float | None, marks: tuple[int, ...]) -> int | None:
    if eevp is None:
        return None
    passed = [mark for mark in marks if eevp >= mark]
    return max(passed) if passed else None
