"""The status page's "what moved" table: per race or proposal, where it stands (who leads and by
how much, or the yes share) and the latest batch (votes added, or a canton counting on), from the
newest numbers a source committed."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pollerd.core.cantons import canton_name
from pollerd.core.languages import ENGLISH

SCANNED = 400  # the newest numbers of a source read for the table
ROWS = 20  # races or proposals shown, the most recently moved first


def moved_rows(entries: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per race or proposal from its newest batch (entries newest first)."""
    rows: dict[str, dict[str, Any]] = {}
    for entry in entries:
        new = entry.get("new") or {}
        if entry["type"] == "votes_counted":
            row_key, row = entry["key"], _race_row(new)
        elif entry["type"] == "canton_progress" and "proposal" in new:
            row_key, row = f"proposal:{new['proposal']}", _proposal_row(new, entry.get("scope") or {})
        else:
            continue
        if row_key not in rows and len(rows) < ROWS:
            rows[row_key] = row | {"committed_at": entry.get("committed_at")}
    return list(rows.values())


def _race_row(new: dict[str, Any]) -> dict[str, Any]:
    number = ENGLISH.number
    lead = (
        f"{new['leader']} by {number(new['margin_votes'])} ({number(new['margin_points'] or 0)} pts)"
        if new.get("leader")
        else "nobody (a tie, or no votes)"
    )
    batch = f"{'+' if new.get('votes_added', 0) >= 0 else ''}{number(new.get('votes_added') or 0)} votes"
    if new.get("correction"):
        batch += " (a correction)"
    if new.get("precincts_reporting_pct") is not None:
        batch += f", {number(new['precincts_reporting_pct'])}% of precincts"
    if new.get("eevp") is not None:
        batch += f", {number(new['eevp'])}% of the expected vote"
    what = f"{new.get('state_name') or new.get('state') or ''}: {new.get('race') or ''}"
    return {"what": what, "lead": lead, "batch": batch}


def _proposal_row(new: dict[str, Any], scope: dict[str, Any]) -> dict[str, Any]:
    share = new.get("national_yes_pct")
    lead = (
        "no figures yet" if share is None else f"{'yes' if share > 50 else 'no' if share < 50 else 'tied'}, "
    )
    if share is not None:
        lead += f"{ENGLISH.number(share)}% yes"
    canton = canton_name(scope.get("canton"), "en") or new.get("canton_name")
    counted = f"{new.get('gemeinden_abgeschlossen')} of {new.get('gemeinden_total')} communes"
    return {"what": str(new["proposal"]), "lead": lead, "batch": f"{canton}: {counted}"}
