"""A version as the CSV a chart reads (Datawrapper and the like fetch it from a bucket): an AP
snapshot as elex's results rows, only the races of the offices and states asked for; an FSO file
as one row per canton and party (the parties file), per proposal and canton (a vote file), or per
canton (the other election files). ``columns`` chooses and orders the columns (a chart needs five,
not forty); every name must be one some table has (checked at start)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from pollerd.core.cantons import canton_name
from pollerd.core.election import table
from pollerd.election.fso import truthy
from pollerd.results.elex import COLUMNS, elex_tables, to_csv

FSO_PARTY_COLUMNS = (
    "kanton_nummer",
    "kanton",
    "abgeschlossen",
    "gemeinden_abgeschlossen",
    "gemeinden_total",
    "partei_id",
    "partei",
    "stimmen",
    "staerke",
)
FSO_VOTE_COLUMNS = (
    "vorlagen_id",
    "vorlage",
    "kanton_nummer",
    "kanton",
    "ausgezaehlt",
    "gemeinden_abgeschlossen",
    "gemeinden_total",
    "ja_prozent",
    "ja_stimmen",
    "nein_stimmen",
)
FSO_CANTON_COLUMNS = (
    "kanton_nummer",
    "kanton",
    "abgeschlossen",
    "gemeinden_abgeschlossen",
    "gemeinden_total",
)
KNOWN_COLUMNS = frozenset(COLUMNS) | set(FSO_PARTY_COLUMNS) | set(FSO_VOTE_COLUMNS)


def ap_chart_csv(
    election_date: Any,
    races: Mapping[str, dict[str, Any]],
    columns: Sequence[str] | None = None,
    offices: Collection[str] | None = None,
    states: Collection[str] | None = None,
) -> bytes:
    """An AP snapshot's races (by race key) as elex's results CSV: only the offices and states
    asked for, only the columns asked for (the rows of the races left out are never made)."""
    chosen = [
        race
        for key, race in races.items()
        if (states is None or key.partition(":")[0] in states)
        and (offices is None or race.get("officeID") in offices)
    ]
    rows = elex_tables({"electionDate": election_date, "races": chosen}).results
    return to_csv(rows, columns or COLUMNS)


def fso_chart_csv(
    document: Any, columns: Sequence[str] | None = None, cantons: Collection[int] | None = None
) -> bytes | None:
    """An FSO file as its chart table (None: not an FSO results file)."""
    found = _fso_rows(document) if isinstance(document, dict) else None
    if found is None:
        return None
    names, rows = found
    kept = [row for row in rows if cantons is None or _canton(row.get("kanton_nummer")) in cantons]
    return to_csv(kept, columns or names)


def _fso_rows(document: dict[str, Any]) -> tuple[tuple[str, ...], list[dict[str, Any]]] | None:
    if isinstance(document.get("schweiz"), dict):
        return FSO_VOTE_COLUMNS, _vote_rows(document)
    if not isinstance(document.get("stand_kantone"), list):
        return None
    cantons = {
        row.get("kanton_nummer"): {
            "kanton_nummer": row.get("kanton_nummer"),
            "kanton": canton_name(row.get("kanton_nummer"), "de") or row.get("kanton_bezeichnung"),
            "abgeschlossen": truthy(row.get("kanton_abgeschlossen")),
            "gemeinden_abgeschlossen": row.get("gemeinden_abgeschlossen"),
            "gemeinden_total": row.get("gemeinden_total"),
        }
        for row in document["stand_kantone"]
        if isinstance(row, dict)
    }
    parties = [
        cantons.get(row.get("kanton_nummer"), {"kanton_nummer": row.get("kanton_nummer")})
        | {
            "partei_id": party.get("partei_id"),
            "partei": party.get("partei_bezeichnung_de"),
            "stimmen": party.get("stimmen_partei"),
            "staerke": party.get("partei_staerke"),
        }
        for row in document.get("level_kantone") or []
        if isinstance(row, dict) and isinstance(row.get("resultat"), list)
        for party in row["resultat"]
        if isinstance(party, dict)
    ]
    if parties:
        return FSO_PARTY_COLUMNS, parties
    return FSO_CANTON_COLUMNS, list(cantons.values())


def _vote_rows(document: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for proposal in document["schweiz"].get("vorlagen") or []:
        if not isinstance(proposal, dict):
            continue
        titles = {
            t.get("langKey"): t.get("text")
            for t in proposal.get("vorlagenTitel") or []
            if isinstance(t, dict)
        }
        for canton in proposal.get("kantone") or []:
            if not isinstance(canton, dict):
                continue
            result = table(canton.get("resultat"))
            municipalities = [m for m in canton.get("gemeinden") or [] if isinstance(m, dict)]
            counted = sum(
                1 for m in municipalities if truthy(table(m.get("resultat")).get("gebietAusgezaehlt"))
            )
            rows.append(
                {
                    "vorlagen_id": proposal.get("vorlagenId"),
                    "vorlage": titles.get("de") or next(iter(titles.values()), None),
                    "kanton_nummer": canton.get("geoLevelnummer"),
                    "kanton": canton_name(canton.get("geoLevelnummer"), "de") or canton.get("geoLevelname"),
                    "ausgezaehlt": truthy(result.get("gebietAusgezaehlt")),
                    "gemeinden_abgeschlossen": counted if municipalities else None,
                    "gemeinden_total": len(municipalities) if municipalities else None,
                    "ja_prozent": result.get("jaStimmenInProzent"),
                    "ja_stimmen": result.get("jaStimmenAbsolut"),
                    "nein_stimmen": result.get("neinStimmenAbsolut"),
                }
            )
    return rows


def _canton(number: Any) -> int | None:
    try:
        return int(str(number))
    except ValueError:
        return None
