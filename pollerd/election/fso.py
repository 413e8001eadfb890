"""FSO counting progress from two consecutive versions of a results file: cantons finished,
reopened (a correction), corrected and counting on, the whole ballot final, a vote's proposal
decided. Connected proposals (an initiative, its counter-proposal and the deciding question,
``vorlagenArtId`` 4, 5 and 6, linked by ``hauptvorlagenId``) are told together, once all three are
decided: the deciding question says which it favours and which comes into force.

Election files say per canton ``stand_kantone[].kanton_abgeschlossen`` (a bool, in one file the
string "false") and hold the canton's figures in ``level_kantone``; vote files say per proposal
``vorlageBeendet`` and ``vorlageAngenommen`` and per canton ``resultat.gebietAusgezaehlt``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from pollerd.core.canonical import canonical_hash
from pollerd.core.election import Fact, table
from pollerd.election.fso_numbers import favoured_by_question, majority_facts, progress_fact

_BALLOT = re.compile(r"[A-Za-z]{2,4}\d{4}")
SWISS_TIME = ZoneInfo("Europe/Zurich")
MAIN, COUNTER, QUESTION = 4, 5, 6  # vorlagenArtId of connected proposals
_LEADING_PARTIES = 3  # a canton's running figures name its strongest parties


def fso_facts(resource: str, old: Any, new: Any) -> list[Fact]:
    """The election events between two versions of one FSO file (``old`` None: the first)."""
    if not isinstance(new, dict):
        return []
    old_doc = old if isinstance(old, dict) else None
    at = swiss_local_to_utc(new["timestamp"]) if isinstance(new.get("timestamp"), str) else None
    if isinstance(new.get("schweiz"), dict):
        return _vote_facts(resource, old_doc, new, at)
    ballot = ballot_of(resource)
    facts = _canton_facts(resource, ballot, _election_cantons(old_doc), _election_cantons(new), at)
    return facts + _final_facts(ballot, old_doc, new, at)


def ballot_of(resource: str) -> str:
    """The ballot a file belongs to, from its name (``sd-t-17.02-NRW2023-parteien``: NRW2023), so
    the files of one ballot tell one story; the resource itself when the name says nothing."""
    found = _BALLOT.search(resource)
    return found.group(0).upper() if found else resource


@dataclass(frozen=True)
class CantonCount:
    """One canton as a version of a file shows it: finished or not, its figures (its rows of
    ``level_kantone`` in an election file, its ``resultat`` in a vote file) and, in an election
    file, how many municipalities it has and has counted."""

    number: Any
    name: Any
    complete: bool
    figures: Any
    counts: dict[str, Any]
    proposal: Any = None  # the vote file's vorlagenId; None in an election file


@dataclass(frozen=True)
class _Canton:
    """A canton as the rules compare it: its figures reduced to a digest."""

    name: Any
    complete: bool
    figures: str
    counts: dict[str, Any]
    running: dict[str, Any]

    @classmethod
    def of(cls, count: CantonCount) -> _Canton:
        return cls(count.name, count.complete, canonical_hash(count.figures), count.counts, _running(count))


def _running(count: CantonCount) -> dict[str, Any]:
    """The figures a canton's progress is told with: a vote's yes share, an election's strongest
    parties (only files with party strengths have them: the other files of a ballot stay quiet)."""
    if count.proposal is not None:
        figures = table(count.figures)
        return {"yes_pct": figures["jaStimmenInProzent"]} if "jaStimmenInProzent" in figures else {}
    parties = [
        party
        for row in count.figures
        if isinstance(row, dict) and isinstance(row.get("resultat"), list)
        for party in row["resultat"]
        if isinstance(party, dict) and isinstance(party.get("partei_staerke"), int | float)
    ]
    parties.sort(key=lambda party: -party["partei_staerke"])
    leading = [
        {"party": party.get("partei_bezeichnung_de"), "share": party["partei_staerke"]}
        for party in parties[:_LEADING_PARTIES]
    ]
    return {"parties": leading} if leading else {}


def canton_counts(document: Any) -> list[CantonCount]:
    """Every canton of an FSO results file (of each proposal, in a vote file)."""
    if not isinstance(document, dict):
        return []
    if isinstance(document.get("schweiz"), dict):
        return [count for proposal in _proposals(document).values() for count in _proposal_counts(proposal)]
    return _election_counts(document)


def _election_counts(document: dict[str, Any]) -> list[CantonCount]:
    figures: dict[Any, list[Any]] = {}
    for row in document.get("level_kantone") or []:
        if isinstance(row, dict):
            figures.setdefault(row.get("kanton_nummer"), []).append(row)
    counts = []
    for row in document.get("stand_kantone") or []:
        if isinstance(row, dict) and "kanton_nummer" in row:
            number = row["kanton_nummer"]
            counts.append(
                CantonCount(
                    number,
                    row.get("kanton_bezeichnung"),
                    truthy(row.get("kanton_abgeschlossen")),
                    figures.get(number, []),
                    {k: row[k] for k in ("gemeinden_total", "gemeinden_abgeschlossen") if k in row},
                )
            )
    return counts


def _proposal_counts(proposal: dict[str, Any]) -> list[CantonCount]:
    counts = []
    for row in proposal.get("kantone") or []:
        if isinstance(row, dict) and "geoLevelnummer" in row:
            result = table(row.get("resultat"))
            counts.append(
                CantonCount(
                    row["geoLevelnummer"],
                    row.get("geoLevelname"),
                    truthy(result.get("gebietAusgezaehlt")),
                    {k: v for k, v in result.items() if k != "gebietAusgezaehlt"},
                    _municipalities(row.get("gemeinden")),
                    proposal.get("vorlagenId"),
                )
            )
    return counts


def _municipalities(rows: Any) -> dict[str, Any]:
    """How many municipalities a canton of a vote file lists, and how many are counted."""
    if not isinstance(rows, list):
        return {}
    counted = sum(
        1
        for row in rows
        if isinstance(row, dict) and truthy(table(row.get("resultat")).get("gebietAusgezaehlt"))
    )
    return {"gemeinden_total": len(rows), "gemeinden_abgeschlossen": counted}


def _election_cantons(document: dict[str, Any] | None) -> dict[Any, _Canton] | None:
    if document is None:
        return None
    return {count.number: _Canton.of(count) for count in _election_counts(document)}


def _canton_facts(
    resource: str,
    ballot: str,
    old: dict[Any, _Canton] | None,
    new: dict[Any, _Canton] | None,
    at: str | None,
    extra: dict[str, Any] | None = None,
) -> list[Fact]:
    facts = []
    for number, canton in sorted((new or {}).items(), key=lambda item: str(item[0])):
        before = (old or {}).get(number) if old is not None else None
        key = f"{ballot}:{number}"
        fields = {
            "ballot": ballot,
            "canton": number,
            "canton_name": canton.name,
            **canton.counts,
            **(extra or {}),
        }
        scope = {"canton": number}
        if before is None or before.complete != canton.complete:
            if before is None and not canton.complete:
                continue
            kind = "canton_complete" if canton.complete else "canton_reopened"
            state = "complete" if canton.complete else "open"
            old_fields = None if before is None else {"complete": before.complete, **before.counts}
            facts.append(
                Fact(kind, key, f"canton:{key}", state, old_fields, fields, at, scope, before is None)
            )
        elif not canton.complete and canton.running:
            progress = progress_fact(
                ballot, number, fields | canton.running, before.counts.get("gemeinden_abgeschlossen"), at
            )
            facts += [] if progress is None else [progress]
        elif canton.complete and before.figures != canton.figures:
            facts.append(
                Fact(
                    "count_corrected",
                    key,
                    f"corrected:{resource}:{number}",
                    canton.figures,
                    {"figures": before.figures},
                    fields | {"figures": canton.figures, "file": resource},
                    at,
                    scope,
                )
            )
    return facts


def _final_facts(ballot: str, old: dict[str, Any] | None, new: dict[str, Any], at: str | None) -> list[Fact]:
    stand, was = table(new.get("stand")), table((old or {}).get("stand"))
    if not truthy(stand.get("wahl_abgeschlossen")) or truthy(was.get("wahl_abgeschlossen")):
        return []
    fields = {"ballot": ballot, **{k: v for k, v in stand.items() if k != "wahl_abgeschlossen"}}
    return [Fact("result_final", ballot, f"final:{ballot}", "final", None, fields, at, {}, old is None)]


def _vote_facts(resource: str, old: dict[str, Any] | None, new: dict[str, Any], at: str | None) -> list[Fact]:
    before, now = _proposals(old), _proposals(new)
    groups, groups_before = _groups(now), _groups(before)
    facts: list[Fact] = []
    for number, proposal in sorted(now.items(), key=lambda item: str(item[0])):
        previous = before.get(number) if old is not None else None
        title = _title(proposal)
        facts += _canton_facts(
            resource,
            str(number),
            _vote_cantons(previous) if old is not None else None,
            _vote_cantons(proposal),
            at,
            {
                "proposal": title,
                "proposal_titles": _titles(proposal),
                "national_yes_pct": table(proposal.get("resultat")).get("jaStimmenInProzent"),
            },
        )
        group, group_before = groups.get(number), groups_before.get(number)
        if group is None or _all_decided(group):
            told_before = previous is not None and (group_before is None or _all_decided(group_before))
            facts += _decided(
                number, title, previous if told_before else None, proposal, at, old is None, group
            )
        facts += majority_facts(number, (title, _titles(proposal)), previous, proposal, at)
    return facts


def _decided(
    number: Any,
    title: str,
    old: dict[str, Any] | None,
    new: dict[str, Any],
    at: str | None,
    initial: bool,
    group: dict[int, dict[str, Any]] | None,
) -> list[Fact]:
    if not truthy(new.get("vorlageBeendet")):
        return []
    state = "accepted" if truthy(new.get("vorlageAngenommen")) else "rejected"
    if old is not None and truthy(old.get("vorlageBeendet")) and _outcome(old) == state:
        return []
    result = table(new.get("resultat"))
    cantons = table(new.get("staende"))
    fields: dict[str, Any] = {
        "proposal": title,
        "proposal_titles": _titles(new),
        "vorlagen_id": number,
        "outcome": state,
        "yes_pct": result.get("jaStimmenInProzent"),
        "provisional": new.get("provisorisch"),
        **{
            k: cantons[k]
            for k in ("jaStaendeGanz", "jaStaendeHalb", "neinStaendeGanz", "neinStaendeHalb")
            if k in cantons
        },
        **(_connected(number, new, group) if group is not None else {}),
    }
    old_fields = {"outcome": _outcome(old)} if old is not None and truthy(old.get("vorlageBeendet")) else None
    if "favours" in fields:
        state = f"favours:{fields['favours_id']}"
    return [
        Fact("proposal_decided", str(number), f"decided:{number}", state, old_fields, fields, at, {}, initial)
    ]


def _groups(proposals: dict[Any, dict[str, Any]]) -> dict[Any, dict[int, dict[str, Any]]]:
    """Each connected proposal's group: its members by ``vorlagenArtId`` (main, counter, question)."""
    groups: dict[Any, dict[int, dict[str, Any]]] = {}
    for number, proposal in proposals.items():
        kind = proposal.get("vorlagenArtId")
        if kind in (MAIN, COUNTER, QUESTION):
            head = number if kind == MAIN else proposal.get("hauptvorlagenId", number)
            groups.setdefault(head, {})[kind] = proposal
    return {
        p.get("vorlagenId"): members
        for members in groups.values()
        if len(members) == 3  # a group the file shows only in part is told as separate proposals
        for p in members.values()
    }


def _all_decided(group: dict[int, dict[str, Any]]) -> bool:
    return all(truthy(member.get("vorlageBeendet")) for member in group.values())


def _connected(number: Any, proposal: dict[str, Any], group: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """What a connected proposal's event says of the others: their titles; and, for the deciding
    question, which proposal it favours and which comes into force."""
    others = [_title(member) for member in group.values() if member.get("vorlagenId") != number]
    fields: dict[str, Any] = {"connected": others, "group": group[MAIN].get("vorlagenId")}
    if proposal.get("vorlagenArtId") != QUESTION:
        return fields
    main, counter = group[MAIN], group[COUNTER]
    favoured = main if favoured_by_question(proposal) else counter
    accepted = [member for member in (main, counter) if truthy(member.get("vorlageAngenommen"))]
    in_force = favoured if len(accepted) == 2 else accepted[0] if accepted else None
    return fields | {
        "favours": _title(favoured),
        "favours_titles": _titles(favoured),
        "favours_id": favoured.get("vorlagenId"),
        "in_force": None if in_force is None else _title(in_force),
        "in_force_titles": _titles(in_force),
    }


def _outcome(proposal: dict[str, Any]) -> str:
    return "accepted" if truthy(proposal.get("vorlageAngenommen")) else "rejected"


def _proposals(document: dict[str, Any] | None) -> dict[Any, dict[str, Any]]:
    switzerland = (document or {}).get("schweiz")
    if not isinstance(switzerland, dict):
        return {}
    return {
        p.get("vorlagenId"): p
        for p in switzerland.get("vorlagen") or []
        if isinstance(p, dict) and "vorlagenId" in p
    }


def _vote_cantons(proposal: dict[str, Any] | None) -> dict[Any, _Canton] | None:
    if proposal is None:
        return None
    return {count.number: _Canton.of(count) for count in _proposal_counts(proposal)}


def _titles(proposal: dict[str, Any] | None) -> dict[str, str]:
    """A proposal's title in each language the file gives it in."""
    titles = (proposal or {}).get("vorlagenTitel")
    if not isinstance(titles, list):
        return {}
    return {
        str(t["langKey"]): str(t["text"])
        for t in titles
        if isinstance(t, dict) and isinstance(t.get("langKey"), str) and t.get("text")
    }


def _title(proposal: dict[str, Any]) -> str:
    titles = proposal.get("vorlagenTitel")
    if isinstance(titles, list):
        by_language = {t.get("langKey"): t.get("text") for t in titles if isinstance(t, dict)}
        return str(
            by_language.get("de") or next(iter(by_language.values()), "") or proposal.get("vorlagenId")
        )
    return str(titles or proposal.get("vorlagenId"))


def swiss_local_to_utc(text: str) -> str | None:
    """``2023-10-22T14:03:15`` (Swiss local time, no offset) as ISO UTC, or None if unreadable.

    Uses the Europe/Zurich rules, so summer (UTC+2) and winter (UTC+1) are both right; in the
    repeated hour of the autumn change the first (summer-time) reading is taken.
    """
    try:
        local = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if local.tzinfo is None:
        local = local.replace(tzinfo=SWISS_TIME)
    return local.astimezone(UTC).isoformat().replace("+00:00", "Z")


def truthy(flag: object) -> bool:
    """The FSO's flags: a bool, or (in one file) the string "true"/"false"."""
    if isinstance(flag, str):
        return flag.strip().lower() == "true"
    return flag is True
