"""The desk's decisions in the SQLite state: added by the command line or the status page, applied
(or refused) by the poller of their source, the applied ones with the event that told them."""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

from pollerd.desk.book import Decision


def add_decision(db: sqlite3.Connection, decision: Decision) -> Decision:
    """Keep a new decision (pending); the decision with its id."""
    body = {k: v for k, v in decision.to_json().items() if k != "id"} | {"status": "pending"}
    row = db.execute(
        "INSERT INTO desk_decisions (source, status, body, created_at) VALUES (?, 'pending', ?, ?)"
        " RETURNING id",
        (decision.source, json.dumps(body), time.time()),
    ).fetchone()
    return Decision.from_json(body | {"id": int(row[0])})


def decisions(db: sqlite3.Connection, source: str | None, status: str | None = None) -> list[Decision]:
    """The decisions of a source (None: every source), oldest first; only those of ``status``."""
    query, args = "SELECT id, body FROM desk_decisions WHERE 1=1", list[str]()
    if source is not None:
        query, args = query + " AND source=?", [*args, source]
    if status is not None:
        query, args = query + " AND status=?", [*args, status]
    return [
        Decision.from_json(json.loads(body) | {"id": id_})
        for id_, body in db.execute(f"{query} ORDER BY id", args)
    ]


def settle_decision(db: sqlite3.Connection, decision: Decision) -> bool:
    """Record what became of a pending decision (applied or refused), in the caller's
    transaction; False when it was settled already (by another writer: it must not be twice)."""
    body = {k: v for k, v in decision.to_json().items() if k != "id"}
    changed = db.execute(
        "UPDATE desk_decisions SET status=?, body=? WHERE id=? AND status='pending'",
        (decision.status, json.dumps(body), decision.id),
    ).rowcount
    return changed == 1


def latest_told(db: sqlite3.Connection, source: str, prefix: str) -> dict[str, dict[str, Any]]:
    """The last election event told of each subject starting with ``prefix`` (``pending:``,
    ``conflict:``, ``call:``), by subject."""
    rows = db.execute(
        "SELECT subject, body FROM election_events AS e WHERE source=? AND subject LIKE ? ESCAPE '!'"
        " AND id = (SELECT MAX(id) FROM election_events WHERE source=e.source AND subject=e.subject)",
        (source, _like(prefix)),
    )
    return {subject: json.loads(body) for subject, body in rows}


def _like(prefix: str) -> str:
    return prefix.replace("!", "!!").replace("%", "!%").replace("_", "!_") + "%"
